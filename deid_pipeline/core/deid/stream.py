"""A DICOM file read as its element stream: headers and value bytes, nothing decoded.

pydicom's reader builds a Dataset of typed elements, and most of what it costs to de-identify a
file by tags is that reading and the writing back (a few hundred elements, each of which is kept
as it is, dropped, or replaced by one new value). This module reads the files that are plain to
read — little endian, explicit or implicit VR (deflated included), sorted tags, values where the
headers say — into raw elements and item lists, and writes such elements back. Anything else
raises `NotPlain`, and the caller reads the file with pydicom.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct

from pydicom.dataelem import RawDataElement
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from deid_pipeline.core.deid.deflate import DeflateError, inflate
from deid_pipeline.core.deid.identifiers import dictionary_vr

PIXEL_DATA = 0x7FE00010
UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM_END = 0xFFFEE00D
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
# Little-endian explicit-VR syntaxes whose pixel data is encapsulated (PS3.5 A.4).
_ENCAPSULATED_PREFIXES = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.8.")
# pydicom leaves values over this size on disk until they are written (batch.DEFER_SIZE) and
# then writes them decoded: only pixel data that large is plain.
MAX_VALUE = 256 * 1024
LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
KNOWN_VRS = frozenset({
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
    "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
    "UR", "US", "UT", "UV",
})
_EXPLICIT_VRS = {vr.encode(): vr for vr in KNOWN_VRS}
_TAG = Struct("<HH").unpack_from
_LENGTH = Struct("<L").unpack_from
_EXPLICIT_SHORT = Struct("<HH2sH").unpack_from
_IMPLICIT_HEADER = Struct("<HHL").pack
_SHORT_HEADER = Struct("<HH2sH").pack
_LONG_HEADER = Struct("<HH2sHL").pack
ITEM_START_UNDEFINED = _IMPLICIT_HEADER(0xFFFE, 0xE000, UNDEFINED_LENGTH)
ITEM_END_BYTES = _IMPLICIT_HEADER(0xFFFE, 0xE00D, 0)
SEQUENCE_END_BYTES = _IMPLICIT_HEADER(0xFFFE, 0xE0DD, 0)


class NotPlain(Exception):
    """The file holds something this module does not read or write as pydicom would."""


@dataclass(slots=True)
class Item:
    elements: dict[int, RawDataElement | SequenceElement]
    undefined: bool  # written with an undefined length and an item delimiter


@dataclass(slots=True)
class SequenceElement:
    tag: int
    undefined: bool
    items: list[Item]


Element = RawDataElement | SequenceElement


@dataclass(slots=True)
class StreamFile:
    preamble: bytes
    meta: dict[int, RawDataElement]
    syntax: str
    implicit: bool
    elements: dict[int, Element]

    @property
    def deflated(self) -> bool:
        return self.syntax == DEFLATED


def read_stream(data: bytes) -> StreamFile:
    """The file's preamble, file meta and data set; NotPlain for anything unusual."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise NotPlain
    meta, position = _elements(data, 132, len(data), False, _Reading(meta=True))
    syntax_element = meta.get(0x00020010)
    if syntax_element is None or not syntax_element.value:
        raise NotPlain
    syntax = syntax_element.value.rstrip(b"\x00 ").decode("ascii", "replace")
    if syntax == DEFLATED:
        try:
            body = inflate(data[position:])
        except DeflateError as exc:
            raise NotPlain from exc
        start = 0
    elif syntax in (EXPLICIT_LITTLE, IMPLICIT_LITTLE) or syntax.startswith(_ENCAPSULATED_PREFIXES):
        body, start = data, position
    else:
        raise NotPlain  # big endian, or a syntax pydicom may not know
    implicit = syntax == IMPLICIT_LITTLE
    elements, _ = _elements(body, start, len(body), implicit,
                            _Reading(encapsulated=syntax.startswith(_ENCAPSULATED_PREFIXES)))
    return StreamFile(data[:128], meta, syntax, implicit, elements)


@dataclass(slots=True)
class _Reading:
    meta: bool = False
    encapsulated: bool = False
    depth: int = 0


def _elements(buf: bytes, position: int, end: int, implicit: bool, reading: _Reading,
              in_undefined_item: bool = False) -> tuple[dict[int, Element], int]:
    """Elements from `position` up to `end` (or an item delimiter, in an undefined-length item);
    the elements and where reading stopped."""
    elements: dict[int, Element] = {}
    last = -1
    top = reading.depth == 0 and not reading.meta
    while position < end:
        if position + 8 > end:
            raise NotPlain
        group, number, vr_bytes, short_length = _EXPLICIT_SHORT(buf, position)
        tag = group << 16 | number
        if reading.meta and group != 2:
            return elements, position
        if tag == ITEM_END:
            if not in_undefined_item:
                raise NotPlain
            return elements, position + 8
        if tag <= last or tag >> 16 in (0xFFFE, 0):
            raise NotPlain  # out of order, repeated, or a delimiter out of place
        last = tag
        if implicit:
            vr = None
            length = _LENGTH(buf, position + 4)[0]
            start = position + 8
            is_sequence = dictionary_vr(tag) == "SQ"
            if tag >> 16 & 1 and not 0x10 <= number <= 0xFF:
                raise NotPlain  # pydicom's private dictionary gives these a VR of its own
        else:
            vr = _EXPLICIT_VRS.get(vr_bytes)
            if vr is None:
                raise NotPlain
            if vr in LONG_VRS:
                if position + 12 > end:
                    raise NotPlain
                length = _LENGTH(buf, position + 8)[0]
                start = position + 12
            else:
                length, start = short_length, position + 8
            is_sequence = vr == "SQ"
        if is_sequence:
            reading.depth += 1
            if reading.depth > 16:
                raise NotPlain
            if length == UNDEFINED_LENGTH:
                items, position = _undefined_items(buf, start, end, implicit, reading)
            else:
                if start + length > end:
                    raise NotPlain
                items = _defined_items(buf, start, start + length, implicit, reading)
                position = start + length
            reading.depth -= 1
            elements[tag] = SequenceElement(tag, length == UNDEFINED_LENGTH, items)
            continue
        if tag == PIXEL_DATA and not (top and vr in (None, "OB", "OW")):
            raise NotPlain
        if length == UNDEFINED_LENGTH:
            if not (tag == PIXEL_DATA and reading.encapsulated):
                raise NotPlain
            stop = _encapsulated_end(buf, start, end)
            value, position = buf[start:stop], stop + 8
        else:
            position = start + length
            if position > end or length > MAX_VALUE and tag != PIXEL_DATA or tag == PIXEL_DATA \
                    and (reading.encapsulated or length % 2):
                raise NotPlain
            value = buf[start:position]
        elements[tag] = RawDataElement(tag, vr, length, value, start, implicit, True)
    if in_undefined_item:
        raise NotPlain  # no item delimiter
    return elements, position


def _encapsulated_end(buf: bytes, position: int, end: int) -> int:
    """Where the sequence delimiter of encapsulated pixel data starts."""
    if _TAG(buf, position) != (0xFFFE, 0xE000):
        raise NotPlain
    while position + 8 <= end:
        group, number = _TAG(buf, position)
        length = _LENGTH(buf, position + 4)[0]
        if (group, number) == (0xFFFE, 0xE0DD):
            return position
        if (group, number) != (0xFFFE, 0xE000) or length == UNDEFINED_LENGTH:
            raise NotPlain
        position += 8 + length
    raise NotPlain


def _defined_items(buf: bytes, position: int, end: int, implicit: bool,
                   reading: _Reading) -> list[Item]:
    items = []
    while position < end:
        if position + 8 > end or _TAG(buf, position) != (0xFFFE, 0xE000):
            raise NotPlain
        item, position = _item(buf, position, end, implicit, reading)
        items.append(item)
    return items


def _undefined_items(buf: bytes, position: int, end: int, implicit: bool,
                     reading: _Reading) -> tuple[list[Item], int]:
    items = []
    while position + 8 <= end:
        tag = _TAG(buf, position)
        if tag == (0xFFFE, 0xE0DD):
            return items, position + 8
        if tag != (0xFFFE, 0xE000):
            raise NotPlain
        item, position = _item(buf, position, end, implicit, reading)
        items.append(item)
    raise NotPlain  # no sequence delimiter


def _item(buf: bytes, position: int, end: int, implicit: bool,
          reading: _Reading) -> tuple[Item, int]:
    """The item whose header is at `position`, and where the next one starts."""
    length = _LENGTH(buf, position + 4)[0]
    if length == UNDEFINED_LENGTH:
        elements, position = _elements(buf, position + 8, end, implicit, reading, True)
        return Item(elements, True), position
    if position + 8 + length > end:
        raise NotPlain
    elements, _ = _elements(buf, position + 8, position + 8 + length, implicit, reading)
    return Item(elements, False), position + 8 + length


# -- writing --------------------------------------------------------------------------------------

def header(tag: int, vr: str | None, length: int, implicit: bool) -> bytes:
    if implicit:
        return _IMPLICIT_HEADER(tag >> 16, tag & 0xFFFF, length)
    if vr in LONG_VRS:
        return _LONG_HEADER(tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    if length > 0xFFFF:
        raise NotPlain
    return _SHORT_HEADER(tag >> 16, tag & 0xFFFF, vr.encode(), length)


def element_bytes(element: Element | bytes, implicit: bool) -> bytes:
    """An element as written: a raw element's header and value, a sequence's items; `bytes` are
    an element encoded already."""
    if element.__class__ is bytes:
        return element
    if element.__class__ is SequenceElement:
        return sequence_bytes(element, implicit)
    value = element.value
    if element.length == UNDEFINED_LENGTH:
        return header(element.tag, element.VR, UNDEFINED_LENGTH, implicit) + value + \
            SEQUENCE_END_BYTES
    return header(element.tag, element.VR, len(value), implicit) + value


def sequence_bytes(sequence: SequenceElement, implicit: bool) -> bytes:
    parts = []
    for item in sequence.items:
        body = b"".join([element_bytes(e, implicit) for e in item.elements.values()])
        if item.undefined:
            parts += (ITEM_START_UNDEFINED, body, ITEM_END_BYTES)
        else:
            parts += (_IMPLICIT_HEADER(0xFFFE, 0xE000, len(body)), body)
    value = b"".join(parts)
    if sequence.undefined:
        return header(sequence.tag, "SQ", UNDEFINED_LENGTH, implicit) + value + SEQUENCE_END_BYTES
    return header(sequence.tag, "SQ", len(value), implicit) + value
