"""Text values read and written straight from an element's bytes, without pydicom's decoding.

pydicom turns a raw element into a DataElement with a typed, validated value: the right thing in
general, and most of the cost of de-identifying a file, where a couple of hundred elements are
each read once and replaced by a UID, a shifted date or nothing. Plain ASCII bytes decode alike
under every DICOM character set, so for them this module reads the values as pydicom's text
converters do (trailing spaces and NULs stripped, split at backslashes) and writes the new
values back as a raw element that is written out byte for byte. Anything else (another
character set's bytes, a deferred value, binary VRs) is left to pydicom.
"""

from __future__ import annotations

from pydicom.dataelem import DataElement, RawDataElement

# Text VRs whose values are separated by backslashes, and those that hold one value.
MULTI_VALUED = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM",
                          "UI", "UC"})
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
TEXT_VRS = MULTI_VALUED | SINGLE_VALUED


def ascii_values(element: DataElement | RawDataElement, vr: str) -> list[str] | None:
    """The values of an undecoded text element whose bytes are ASCII; None when pydicom must
    decode it. Empty values are left out."""
    if not element.is_raw or vr not in TEXT_VRS or element.value is None:
        return None
    data: bytes = element.value
    if not data.isascii():
        return None
    return split_values(data.decode("ascii"), vr)


def split_values(text: str, vr: str) -> list[str]:
    """A decoded text value's values, stripped as pydicom's converters strip them (AE on both
    sides, the character-set text VRs at the end); empty values left out."""
    text = text.rstrip(" \x00")
    if vr in SINGLE_VALUED:
        return [text] if text else []
    values = text.split("\\")
    if vr == "AE":
        values = [v.strip() for v in values]
    elif vr in ("LO", "SH", "PN", "UC"):
        values = [v.rstrip("\x00 ") for v in values]
    return [v for v in values if v]


def ascii_element(raw: RawDataElement, vr: str, values: list) -> RawDataElement | None:
    """`raw` with `values` as its value, encoded as the file would; None when a value is not
    ASCII text (pydicom must encode it)."""
    return text_element(raw, vr, values, "ascii")


def text_element(raw: RawDataElement, vr: str, values: list,
                 codec: str) -> RawDataElement | None:
    """`raw` with `values` encoded in `codec` as pydicom encodes text (joined by backslashes,
    padded to even length); None when a value is not text that `codec` encodes."""
    if not all(isinstance(v, str) for v in values):
        return None
    if vr in SINGLE_VALUED and len(values) > 1:
        return None
    try:
        data = "\\".join(values).encode(codec)
    except UnicodeError:
        return None
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return raw._replace(value=data, length=len(data))
