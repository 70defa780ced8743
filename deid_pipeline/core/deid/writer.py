"""Write a de-identified dataset and keep, for the leak gate, every byte written except the pixel
data value: scanning those bytes is how the gate reads back what was written without parsing the
file again (parsing and decoding every element costs more than de-identifying it).

The bytes are pydicom's: what `ds.save_as(path, enforce_file_format=True)` writes. pydicom
encodes element by element through a buffer per element, which costs more than the rest of
de-identifying a file; this module writes the same bytes itself where that is plain: an element
still raw (as read, or as `raw_text` rewrote it) is its header and its bytes, a sequence is its
items, and any other element is encoded by pydicom once per distinct value (a file carries the
same dummies, flags and codes as the last one). Whatever pydicom would handle in a way of its own
(a data set to be re-encoded in another encoding or character set, a value over 64 KiB in a
16-bit length, an odd-length pixel data value, file meta to be completed) goes to pydicom whole.
"""

from __future__ import annotations

from pathlib import Path
from struct import Struct

from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO, DicomFileLike
from pydicom.filewriter import dcmwrite, write_data_element, write_dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from deid_pipeline.core.deid.deflate import deflate

PIXEL_DATA = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF
SPECIFIC_CHARACTER_SET = 0x00080005
DEFAULT_ENCODING = "iso8859"  # pydicom's default for a data set without a character set
_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_META_REQUIRED = (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013)
_META_DECODED = (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012)
_MAX_CACHED = 1 << 14  # encoded elements remembered; cleared when full
_CACHEABLE_SCALARS = (str, int, float)


class _PydicomWrites(Exception):
    """Something only pydicom's own writer does right: the whole file goes to it."""


class _Encoding:
    """Element headers of one transfer syntax's encoding."""

    def __init__(self, implicit: bool, little: bool) -> None:
        order = "<" if little else ">"
        self.implicit, self.little = implicit, little
        self.key = (implicit, little)
        self.implicit_header = Struct(f"{order}HHL").pack
        self.short_header = Struct(f"{order}HH2sH").pack
        self.long_header = Struct(f"{order}HH2sHL").pack
        self.item_start = Struct(f"{order}HHL").pack
        self.undefined_sequence_end = self.implicit_header(0xFFFE, 0xE0DD, 0)
        self.undefined_item_end = self.implicit_header(0xFFFE, 0xE00D, 0)
        # Encapsulated pixel data starts with an item tag (pydicom refuses anything else).
        self.item_tag = b"\xfe\xff\x00\xe0" if little else b"\xff\xfe\xe0\x00"

    def header(self, tag: int, vr: str | None, length: int) -> bytes:
        if self.implicit:
            return self.implicit_header(tag >> 16, tag & 0xFFFF, length)
        if vr is None or len(vr) != 2:
            raise _PydicomWrites  # pydicom raises its own error for it
        if vr in _LONG_VRS:
            return self.long_header(tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
        if length > 0xFFFF:
            raise _PydicomWrites  # pydicom writes it as UN (with a warning)
        return self.short_header(tag >> 16, tag & 0xFFFF, vr.encode(), length)


_ENCODINGS = {(implicit, little): _Encoding(implicit, little)
              for implicit in (True, False) for little in (True, False)}
_encoded_elements: dict[tuple, bytes] = {}


def write_dicom(ds: Dataset, path: Path) -> bytes | None:
    """Write `ds` in the DICOM file format at `path`, byte for byte what `ds.save_as(path,
    enforce_file_format=True)` writes. Returns the written bytes minus the pixel data value, or
    None when the transfer syntax deflates the data set (the bytes say nothing readable then)."""
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if not syntax.is_transfer_syntax:
        ds.save_as(path, enforce_file_format=True)
        return None
    try:
        written = _write_fast(ds, path, syntax)
    except _PydicomWrites:
        written = _write_with_pydicom(ds, path, syntax)
    return written


def encode_dataset(ds: Dataset, implicit: bool, little: bool) -> bytes:
    """The data set's elements as pydicom's `write_dataset` encodes them (for tests and tools)."""
    try:
        return _dataset_bytes(ds, _ENCODINGS[(implicit, little)], DEFAULT_ENCODING)
    except _PydicomWrites:
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
        write_dataset(buffer, ds)
        return buffer.getvalue()


def encode_elements(ds: Dataset, implicit: bool) -> dict[int, bytes]:
    """Each element of `ds` (new ones, such as the de-identification method's) as this module
    writes it into a little-endian data set of that encoding."""
    encoding = _ENCODINGS[(implicit, True)]
    return {tag: _elements_bytes(ds, [tag], encoding, DEFAULT_ENCODING) for tag in ds._dict}


# -- the fast path --------------------------------------------------------------------------------

def _write_fast(ds: Dataset, path: Path, syntax: UID) -> bytes | None:
    encoding = _ENCODINGS[(syntax.is_implicit_VR, syntax.is_little_endian)]
    if any(tag >> 16 in (0, 2) for tag in ds._dict):
        raise _PydicomWrites  # dcmwrite refuses command and file meta elements in the data set
    if not _keeps_encoding(ds, encoding):
        raise _PydicomWrites  # pydicom decodes and re-encodes every element then
    preamble = getattr(ds, "preamble", None)
    if preamble and len(preamble) != 128:
        raise _PydicomWrites
    meta = _file_meta_bytes(ds)
    start = (preamble or b"\x00" * 128) + b"DICM" + meta
    if syntax == DeflatedExplicitVRLittleEndian:
        if ds.original_encoding != (False, True):
            raise _PydicomWrites  # save_as's check of endianness, or a data set read otherwise
        body = _dataset_bytes(ds, encoding, DEFAULT_ENCODING, deflated=True)
        deflated = deflate([body])
        with path.open("wb") as handle:
            handle.write(start)
            handle.write(deflated)
            if len(deflated) % 2:
                handle.write(b"\x00")
        return None
    tags = sorted(ds._dict)
    head_tags = [tag for tag in tags if tag < PIXEL_DATA]
    if len(head_tags) + (PIXEL_DATA in ds._dict) != len(tags):
        raise _PydicomWrites  # elements after the pixel data: rare, written as pydicom writes them
    charset = _dataset_charset(ds, DEFAULT_ENCODING)
    head = start + _elements_bytes(ds, head_tags, encoding, charset)
    pixel_header, pixel_value, pixel_end = _pixel_parts(ds, syntax, encoding)
    with path.open("wb") as handle:
        handle.write(head)
        if pixel_header:
            handle.write(pixel_header)
            handle.write(pixel_value)
            handle.write(pixel_end)
    return head


def _keeps_encoding(ds: Dataset, encoding: _Encoding) -> bool:
    """Whether pydicom's `write_dataset` writes `ds`'s elements as they are: it decodes and
    re-encodes all of them when the data set was read in another encoding or its character set
    changed since."""
    return (ds.original_encoding == encoding.key
            and not ds.original_character_set != ds._character_set)


def _dataset_charset(ds: Dataset, parent: object) -> object:
    """What pydicom's `write_dataset` encodes the data set's text in."""
    if SPECIFIC_CHARACTER_SET not in ds._dict:
        return parent
    return ds.get("SpecificCharacterSet", parent)


def _dataset_bytes(ds: Dataset, encoding: _Encoding, parent: object,
                   deflated: bool = False) -> bytes:
    if not _keeps_encoding(ds, encoding):
        # A new item (no encoding of its own, such as the de-identification method's codes):
        # pydicom decodes and encodes each of its elements.
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = encoding.implicit, encoding.little
        write_dataset(buffer, ds, parent_encoding=parent)
        return buffer.getvalue()
    tags = sorted(ds._dict)
    if deflated and PIXEL_DATA in ds._dict:
        ds[PIXEL_DATA].is_undefined_length = False  # dcmwrite's rule for native pixel data
    return _elements_bytes(ds, tags, encoding, _dataset_charset(ds, parent))


def _elements_bytes(ds: Dataset, tags: list[int], encoding: _Encoding, charset: object,
                    elements: dict | None = None) -> bytes:
    elements = ds._dict if elements is None else elements
    parts: list[bytes] = []
    append = parts.append
    for tag in tags:
        if not tag & 0xFFFF and tag >> 16 > 6:
            continue  # retired group lengths are not written
        elem = elements[tag]
        if elem.__class__ is RawDataElement:
            value = elem.value
            if value is None:  # deferred: pydicom reads and decodes it to write it
                elem = ds.get_item(tag)
            else:
                if elem.length == UNDEFINED_LENGTH:
                    if elem.tag == PIXEL_DATA and not value.startswith(encoding.item_tag):
                        raise _PydicomWrites
                    append(encoding.header(elem.tag, elem.VR, UNDEFINED_LENGTH))
                    append(value)
                    append(encoding.undefined_sequence_end)
                else:
                    append(encoding.header(elem.tag, elem.VR, len(value)))
                    append(value)
                continue
        if elem.VR == "SQ":
            append(_sequence_bytes(elem, encoding, charset))
        else:
            append(_element_bytes(elem, encoding, charset))
    return b"".join(parts)


def _sequence_bytes(elem: DataElement, encoding: _Encoding, charset: object) -> bytes:
    undefined = elem.is_undefined_length
    item_charset = _python_encodings(charset)
    parts = []
    for item in elem.value or ():
        body = _dataset_bytes(item, encoding, item_charset)
        if getattr(item, "is_undefined_length_sequence_item", False):
            parts += (encoding.item_start(0xFFFE, 0xE000, UNDEFINED_LENGTH), body,
                      encoding.undefined_item_end)
        else:
            parts += (encoding.item_start(0xFFFE, 0xE000, len(body)), body)
    value = b"".join(parts)
    if undefined:
        return (encoding.header(elem.tag, "SQ", UNDEFINED_LENGTH) + value
                + encoding.undefined_sequence_end)
    return encoding.header(elem.tag, "SQ", len(value)) + value


def _python_encodings(charset: object) -> list[str]:
    """The codecs pydicom hands a sequence's items as their parent's character set."""
    key = tuple(charset) if isinstance(charset, list | MultiValue) else charset
    found = _converted_charsets.get(key)
    if found is None:
        found = _converted_charsets[key] = convert_encodings(charset or ["iso8859"])
    return found


_converted_charsets: dict[object, list[str]] = {}


def _element_bytes(elem: DataElement, encoding: _Encoding, charset: object) -> bytes:
    """pydicom's encoding of a decoded element, remembered by value where the value is plain."""
    value = elem.value
    key = None
    if value.__class__ in _CACHEABLE_SCALARS:
        key = (value.__class__, value)
    elif value.__class__ is MultiValue and all(v.__class__ in _CACHEABLE_SCALARS for v in value):
        key = (MultiValue, tuple((v.__class__, v) for v in value))
    elif value.__class__ is bytes and len(value) <= 64:
        key = (bytes, value)
    if key is not None:
        key = (elem.tag, elem.VR, elem.is_undefined_length, key, encoding.key,
               tuple(charset) if isinstance(charset, list | MultiValue) else charset)
        found = _encoded_elements.get(key)
        if found is not None:
            return found
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = encoding.implicit, encoding.little
    write_data_element(buffer, elem, charset)
    encoded = buffer.getvalue()
    if key is not None:
        if len(_encoded_elements) >= _MAX_CACHED:
            _encoded_elements.clear()
        _encoded_elements[key] = encoded
    return encoded


def _pixel_parts(ds: Dataset, syntax: UID, encoding: _Encoding) -> tuple[bytes, bytes, bytes]:
    """Header, value and end of the pixel data element as the pydicom path writes it: in a slice
    of its own, whose (default) character set differs from a file's that names one, so pydicom
    decodes the element first (pixel data decodes to its bytes, written with even length)."""
    elem = ds._dict.get(PIXEL_DATA)
    if elem is None:
        return b"", b"", b""
    slice_converts = ds.original_character_set != DEFAULT_ENCODING
    if elem.__class__ is RawDataElement and elem.value is not None:
        value = elem.value
        undefined = elem.length == UNDEFINED_LENGTH
        vr = elem.VR
        if len(value) % 2 and slice_converts:
            raise _PydicomWrites  # decoded, it is padded
        if slice_converts and not encoding.implicit and vr not in ("OB", "OW"):
            raise _PydicomWrites
    else:
        # Deferred (read now, decoded) or already decoded: written with the length the syntax
        # says (undefined for encapsulated data), as the slice did.
        decoded = ds.get_item(PIXEL_DATA)
        value = decoded.value
        vr = decoded.VR
        if not isinstance(value, bytes) or len(value) % 2:
            raise _PydicomWrites
        if not encoding.implicit and vr not in ("OB", "OW"):
            raise _PydicomWrites
        undefined = syntax.is_compressed
    if undefined:
        if not value.startswith(encoding.item_tag):
            raise _PydicomWrites
        return (encoding.header(PIXEL_DATA, vr, UNDEFINED_LENGTH), value,
                encoding.undefined_sequence_end)
    return encoding.header(PIXEL_DATA, vr, len(value)), value, b""


def _file_meta_bytes(ds: Dataset) -> bytes:
    """The file meta group as dcmwrite writes it with `enforce_file_format`, where it is complete
    (MediaStorage UIDs as in the data set, every required element present and not empty); else
    pydicom writes the file."""
    meta = ds.file_meta
    elements = meta._dict
    if any(tag >> 16 != 2 for tag in elements) or any(
            tag not in elements for tag in _META_REQUIRED):
        raise _PydicomWrites
    if not (meta.original_encoding == (False, True)
            and not meta.original_character_set != meta._character_set):
        raise _PydicomWrites  # pydicom decodes and re-encodes every element then
    group_length = elements.get(0x00020000)
    if group_length is not None and (group_length.VR != "UL" or not (
            len(group_length.value) == 4 if group_length.is_raw
            else isinstance(group_length.value, int))):
        raise _PydicomWrites  # pydicom writes it in 12 bytes, then the value over the first 12
    # dcmwrite decodes these (in its copy of the group) to check and complete it; the others are
    # written as they are.
    chosen = dict(elements)
    for tag in _META_DECODED:
        elem = chosen[tag] = meta[tag]
        if elem.is_empty:
            raise _PydicomWrites
    sop_class, sop_instance = ds.get("SOPClassUID", None), ds.get("SOPInstanceUID", None)
    if (sop_class and sop_class != chosen[0x00020002].value) or (
            sop_instance and sop_instance != chosen[0x00020003].value):
        raise _PydicomWrites
    chosen.pop(0x00020000, None)
    encoding = _ENCODINGS[(False, True)]
    body = _elements_bytes(meta, sorted(chosen), encoding, DEFAULT_ENCODING, chosen)
    return encoding.header(0x00020000, "UL", 4) + len(body).to_bytes(4, "little") + body


# -- pydicom's own writer -------------------------------------------------------------------------

def _write_with_pydicom(ds: Dataset, path: Path, syntax: UID) -> bytes | None:
    if syntax == DeflatedExplicitVRLittleEndian:
        ds.save_as(path, enforce_file_format=True)
        return None
    # Slices keep elements as read (raw ones stay raw) with the data set's encoding and charset.
    head = ds[:PIXEL_DATA]
    head.file_meta = ds.file_meta
    head.preamble = ds.preamble
    head_buffer = DicomBytesIO()
    dcmwrite(head_buffer, head, enforce_file_format=True)
    head_bytes = head_buffer.getvalue()
    after_bytes = _encoded(ds[PIXEL_DATA + 1:], syntax)
    pixels = ds[PIXEL_DATA:PIXEL_DATA + 1]
    if PIXEL_DATA in pixels and not pixels.get_item(PIXEL_DATA, keep_deferred=True).is_raw:
        # As dcmwrite does: encapsulated pixel data is written with an undefined length.
        pixels[PIXEL_DATA].is_undefined_length = syntax.is_compressed
    with path.open("wb") as handle:
        handle.write(head_bytes)
        out = DicomFileLike(handle)
        out.is_little_endian, out.is_implicit_VR = syntax.is_little_endian, syntax.is_implicit_VR
        write_dataset(out, pixels)
        handle.write(after_bytes)
    return head_bytes + after_bytes


def _encoded(ds: Dataset, syntax: UID) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = syntax.is_little_endian, syntax.is_implicit_VR
    write_dataset(buffer, ds)
    return buffer.getvalue()
