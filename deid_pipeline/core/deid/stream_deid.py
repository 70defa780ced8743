"""De-identify a plain file (`stream.read_stream`) by tags without building pydicom Datasets.

The same decisions, values, audit rows, mappings and output bytes as `TagEngine.deidentify`
followed by `writer.write_dicom`, for the files whose elements are plain: values read and written
as ASCII bytes, elements pydicom would decode and re-encode already in the form it writes them.
Whatever the pydicom path would handle in a way of its own raises `NotPlain`, and the caller
takes that path; tests hold both paths to the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from struct import calcsize, pack, unpack

from pydicom.charset import python_encoding
from pydicom.dataelem import RawDataElement
from pydicom.datadict import dictionary_VR
from pydicom.dataset import PIXEL_KEYWORDS, Dataset
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from deid_pipeline.core.deid import method
from deid_pipeline.core.deid.deflate import deflate
from deid_pipeline.core.deid.engine import (
    GENERATING_ACTIONS,
    AuditRow,
    FileResult,
    PrivateBlocks,
    TagEngine,
    _FileContext,
    _keyword,
    _tag_text,
)
from deid_pipeline.core.deid.identifiers import (
    GATHERED_TAGS,
    GATHERED_VRS,
    IdentifyingValues,
    collect,
    dictionary_vr,
)
from deid_pipeline.core.deid.raw_text import ascii_values, split_values, text_element
from deid_pipeline.core.deid.stream import (
    PIXEL_DATA,
    SEQUENCE_END_BYTES,
    UNDEFINED_LENGTH,
    Element,
    Item,
    NotPlain,
    SequenceElement,
    StreamFile,
    header,
    read_stream,
    element_bytes,
)
from deid_pipeline.core.deid.writer import encode_elements

SPECIFIC_CHARACTER_SET = 0x00080005
SOP_CLASS, SOP_INSTANCE = 0x00080016, 0x00080018
STUDY, SERIES = 0x0020000D, 0x0020000E
PATIENT_NAME, PATIENT_ID, PATIENT_SEX = 0x00100010, 0x00100020, 0x00100040
# Top-level elements the pydicom path decodes on its way (to name the output, to key the
# patient, to choose the character set) and so writes re-encoded: plain only when their bytes are
# what re-encoding gives.
_DECODED_ON_THE_WAY = (SPECIFIC_CHARACTER_SET, SOP_CLASS, SOP_INSTANCE, PATIENT_NAME, PATIENT_ID,
                       PATIENT_SEX, STUDY, SERIES)
_META_VERSION, _META_CLASS, _META_INSTANCE = 0x00020001, 0x00020002, 0x00020003
_META_SYNTAX, _META_IMPLEMENTATION, _META_VERSION_NAME = 0x00020010, 0x00020012, 0x00020013
_SENDER_META = frozenset({0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102})
# VRs whose values the Specific Character Set encodes; the others hold the default repertoire.
CHARSET_VRS = frozenset({"SH", "LO", "UC", "ST", "LT", "UT", "PN"})
DEFAULT_CODEC = "iso8859"  # pydicom's, for a file that names no character set
NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q",
                  "UV": "Q"}


@dataclass
class StreamOutcome:
    known: IdentifyingValues  # the original's identifying values, for the leak gate
    result: FileResult
    syntax: str
    instance: str  # the output's SOP Instance UID
    patient: str  # the output's Patient ID
    study: str
    series: str
    character_set: str | None
    parts: list[bytes]  # the output file
    screened: bytes  # what the leak gate screens (see deidentify_stream)


def deidentify_stream(data: bytes, engine: TagEngine) -> StreamOutcome:
    """The de-identified file for `data`, a whole DICOM file; NotPlain when only the pydicom path
    does it right (including every file the pydicom path quarantines)."""
    stream = read_stream(data)
    top = stream.elements
    if SPECIFIC_CHARACTER_SET in top:
        _check_plain(top[SPECIFIC_CHARACTER_SET], SPECIFIC_CHARACTER_SET, DEFAULT_CODEC)
    codec = _codec(_value(top, SPECIFIC_CHARACTER_SET, DEFAULT_CODEC))
    for tag in _DECODED_ON_THE_WAY:
        if tag in top:
            _check_plain(top[tag], tag, codec)
    if SOP_CLASS not in top or SOP_INSTANCE not in top or not _value(top, STUDY, codec) or \
            not _value(top, SERIES, codec):
        raise NotPlain  # the pydicom path names the reason for the quarantine
    known = IdentifyingValues()
    _gather(top, known, codec)

    result = FileResult()
    context = _StreamContext(
        engine=engine, result=result, known=known, sop_class=_value(top, SOP_CLASS, codec),
        sex=_value(top, PATIENT_SEX, codec) or None,
        offset_days=engine.pseudonymizer.date_offset_days(
            _value(top, PATIENT_ID, codec) or _value(top, PATIENT_NAME, codec)
            or _value(top, STUDY, codec)),
        codec=codec,
    )
    original_sop = _value(top, SOP_INSTANCE, codec)
    if PATIENT_ID in top:
        result.patient_id = (_value(top, PATIENT_ID, codec), "")
    out = context.walk(top, "")
    for tag, rule in engine.policy.ensured_tags().items():
        if tag not in out:
            out[tag] = _new_element(tag, rule.value, stream.implicit, codec)
            result.audit.append(AuditRow(_tag_text(tag), _tag_text(tag), _keyword(tag),
                                         "ensureTagExists", f"policy {rule.source}"))
    if result.patient_id is not None:
        result.patient_id = (result.patient_id[0], _value(out, PATIENT_ID, codec))
    out.update(_method_elements(tuple(engine.policy.options), stream.implicit))
    if SPECIFIC_CHARACTER_SET in top and out.get(SPECIFIC_CHARACTER_SET) is not \
            top[SPECIFIC_CHARACTER_SET]:
        raise NotPlain  # a new character set: pydicom re-encodes every element
    for tag in (STUDY, SERIES, SOP_INSTANCE):
        if tag not in out:
            raise NotPlain
    instance = _value(out, SOP_INSTANCE, codec)
    meta = _meta_bytes(stream, _value(out, SOP_CLASS, codec),
                       result.uid_map.get(original_sop) or instance, instance)
    tags = sorted(out)
    if tags[-1] > PIXEL_DATA:
        raise NotPlain
    start = method.EMPTY_PREAMBLE + b"DICM" + meta
    implicit = stream.implicit
    encoded = [(tag, element_bytes(out[tag], implicit)) for tag in tags if tag != PIXEL_DATA]
    head = b"".join([data for _, data in encoded])
    pixels = out.get(PIXEL_DATA)
    pixel_parts = []
    if pixels is not None:
        undefined = pixels.length == UNDEFINED_LENGTH
        pixel_parts = [header(PIXEL_DATA, pixels.VR, pixels.length if undefined else len(pixels.value),
                              implicit), pixels.value]
        if undefined:
            pixel_parts.append(SEQUENCE_END_BYTES)
    if stream.deflated:
        deflated = deflate([head, *pixel_parts])
        parts = [start, deflated] + ([b"\x00"] if len(deflated) % 2 else [])
    else:
        parts = [start + head, *pixel_parts]
    # The leak gate screens what was written but the pixel data value, before any deflating, and
    # but the top-level values the engine wrote whole (a fake name): those it does not judge.
    generated = result.generated
    screened = start + b"".join([data for tag, data in encoded if _tag_text(tag) not in generated])
    return StreamOutcome(
        known=known, result=result, syntax=stream.syntax, instance=instance,
        patient=_value(out, PATIENT_ID, codec), study=_value(out, STUDY, codec),
        series=_value(out, SERIES, codec),
        character_set=_value(top, SPECIFIC_CHARACTER_SET, codec)
        if SPECIFIC_CHARACTER_SET in top else None,
        parts=parts, screened=screened)


@dataclass
class _StreamContext(_FileContext):
    """`_FileContext.walk` and `apply` over stream elements; values change as they do there."""

    codec: str = DEFAULT_CODEC

    def walk(self, elements: dict[int, Element], prefix: str) -> dict[int, Element | bytes]:
        out: dict[int, Element | bytes] = {}
        blocks = PrivateBlocks(lambda tag: _creator(elements, tag, self.codec))
        decide, audit, generated = self.engine.decide, self.result.audit.append, self.result.generated
        sop_class = self.sop_class if not prefix else ""
        for tag, element in elements.items():
            number = tag & 0xFFFF
            if number == 0:  # group lengths, as in the engine
                continue
            private = tag >> 16 & 1
            if private and 0x0010 <= number <= 0x00FF:
                blocks.creators.append(tag)
                out[tag] = element
                continue
            creator = blocks.creator(tag) if private else None
            if element.__class__ is SequenceElement:
                vr = "SQ"
            else:
                vr = element.VR or dictionary_vr(tag)
                if vr is None:
                    raise NotPlain
            decision = decide(tag, vr, creator, sop_class)
            tag_text = _tag_text(tag)
            path = prefix + tag_text
            kept = self._apply(element, tag, vr, decision, path)
            if kept is not None:
                out[tag] = kept
                if decision.action in GENERATING_ACTIONS and vr != "SQ":
                    generated.add(path)
                if private:
                    blocks.keep(tag)
            audit(AuditRow(path, tag_text, _keyword(tag), decision.action, decision.rule))
        unused = set(blocks.unused())
        for tag in blocks.creators:
            if tag in unused:
                del out[tag]
            else:  # the engine read it to name the block: written re-encoded
                _check_plain(out[tag], tag, self.codec, "LO")
        if SPECIFIC_CHARACTER_SET in elements and prefix:
            raise NotPlain  # an item's own character set
        return out

    def _apply(self, element: Element, tag: int, vr: str, decision, path: str) -> Element | None:
        action = decision.action
        if action == "delete":
            return None
        if action == "keep" and vr != "SQ":
            return element
        if vr == "SQ":
            if element.__class__ is not SequenceElement:
                raise NotPlain
            if action in ("remove", "dummy"):
                return SequenceElement(tag, element.undefined, [])
            if action in ("keep", "clean", "hashID"):
                return SequenceElement(tag, element.undefined, [
                    Item(self.walk(item.elements, f"{path}[{index}]."), item.undefined)
                    for index, item in enumerate(element.items)])
            return None
        transform = self.transform_for(action, vr, decision)
        if transform is None:
            return None
        if element.__class__ is SequenceElement or tag in PIXEL_KEYWORDS:
            raise NotPlain
        values = _values(element, vr, self.codec)
        return _encoded(element, vr, self._transformed(values, transform, vr), self.codec)


def _codec(character_set: str) -> str:
    """The Python codec of a Specific Character Set that names one (no code extensions)."""
    if not character_set:
        return DEFAULT_CODEC
    codec = python_encoding.get(character_set)
    if codec is None or character_set.startswith("ISO 2022"):
        raise NotPlain
    return codec


def _values(element: RawDataElement, vr: str, codec: str) -> list:
    """An element's values as pydicom decodes them, empty ones left out."""
    values = ascii_values(element, vr)
    if values is not None:
        return values
    data = element.value
    if vr in CHARSET_VRS and data is not None and b"\x1b" not in data:
        return split_values(data.decode(codec), vr)
    number = NUMBER_FORMATS.get(vr)
    if number is None or data is None or len(data) % calcsize("<" + number):
        raise NotPlain
    return list(unpack(f"<{len(data) // calcsize('<' + number)}{number}", data))


def _encoded(element: RawDataElement, vr: str, values: list, codec: str) -> RawDataElement:
    """`element` with `values`, encoded as pydicom encodes them."""
    number = NUMBER_FORMATS.get(vr)
    if number is not None:
        data = pack(f"<{len(values)}{number}", *values)
        return element._replace(value=data, length=len(data))
    encoded = text_element(element, vr, values, codec if vr in CHARSET_VRS else "ascii")
    if encoded is None:
        raise NotPlain
    return encoded


def _gather(elements: dict[int, Element], found: IdentifyingValues, codec: str) -> None:
    """`identifiers.gather` over stream elements."""
    for tag, element in elements.items():
        if element.__class__ is SequenceElement:
            for item in element.items:
                _gather(item.elements, found, codec)
            continue
        vr = element.VR
        if not vr:
            vr = dictionary_vr(tag)
            if vr is None:
                continue  # a private creator (the stream reads no other unknown tag)
        elif vr == "UN":
            vr = dictionary_vr(tag) or vr
        if vr not in GATHERED_VRS and tag not in GATHERED_TAGS:
            continue
        values = _values(element, vr, codec)
        if not element.value.isascii() and _encoded(element, vr, values, codec).value != \
                element.value:
            raise NotPlain  # pydicom decodes it here and writes it re-encoded
        collect(found, tag, vr, values)


def _creator(elements: dict[int, Element], tag: int, codec: str) -> str | None:
    element = elements.get((tag & 0xFFFF0000) | (tag & 0xFFFF) >> 8)
    if element is None:
        return None
    if element.__class__ is SequenceElement or element.VR not in (None, "LO"):
        raise NotPlain
    values = _values(element, "LO", codec)
    if len(values) > 1:
        raise NotPlain
    return values[0] if values else ""


def _check_plain(element: Element, tag: int, codec: str, vr: str | None = None) -> None:
    """An element the pydicom path decodes and writes re-encoded: its bytes must be what
    re-encoding gives, and it must hold one value at most (it is used as a string)."""
    if element.__class__ is SequenceElement:
        raise NotPlain
    vr = vr or element.VR or dictionary_vr(tag)
    values = _values(element, vr, codec)
    if len(values) > 1 or b"\\" in element.value:
        raise NotPlain
    if _encoded(element, vr, values, codec).value != element.value:
        raise NotPlain


def _value(elements: dict[int, Element | bytes], tag: int, codec: str) -> str:
    """A single-valued text element's value, '' when absent or empty."""
    element = elements.get(tag)
    if element is None:
        return ""
    if element.__class__ is not RawDataElement:
        raise NotPlain
    values = _values(element, element.VR or dictionary_vr(tag), codec)
    if len(values) > 1:
        raise NotPlain
    return str(values[0]) if values else ""


def _new_element(tag: int, value: object, implicit: bool, codec: str) -> RawDataElement:
    """An element ensureTagExists adds (empty, or a text literal), as pydicom encodes it."""
    vr = dictionary_VR(tag)
    empty = RawDataElement(BaseTag(tag), vr, 0, b"", 0, implicit, True)
    if value in (None, ""):
        return empty
    if not isinstance(value, str):
        raise NotPlain
    return _encoded(empty, vr, [value], codec)


@cache
def _method_elements(options: tuple[str, ...], implicit: bool) -> dict[int, bytes]:
    """What `method.record` sets, encoded."""
    ds = Dataset()
    method.record(ds, options)
    return encode_elements(ds, implicit)


def _meta_bytes(stream: StreamFile, sop_class: str, media_instance: str, instance: str) -> bytes:
    """The file meta group as `method.rewrite_file_meta` and then the writer leave it."""
    meta = stream.meta
    for tag in (_META_VERSION, _META_CLASS, _META_SYNTAX):
        element = meta.get(tag)
        if element is None or not element.value:
            raise NotPlain
    for tag in (_META_CLASS, _META_SYNTAX):
        _check_plain(meta[tag], tag, DEFAULT_CODEC)
    if len(meta[_META_VERSION].value) % 2 or (sop_class and sop_class != _value(meta, _META_CLASS, DEFAULT_CODEC)):
        raise NotPlain
    if not media_instance or (instance and instance != media_instance):
        raise NotPlain
    chosen: dict[int, bytes] = {
        tag: element_bytes(element, False) for tag, element in meta.items()
        if tag not in _SENDER_META and tag != 0x00020000
    }
    chosen[_META_INSTANCE] = _text_element(_META_INSTANCE, "UI", media_instance)
    chosen[_META_IMPLEMENTATION] = _text_element(_META_IMPLEMENTATION, "UI",
                                                 PYDICOM_IMPLEMENTATION_UID)
    chosen[_META_VERSION_NAME] = _text_element(_META_VERSION_NAME, "SH",
                                               method.IMPLEMENTATION_VERSION_NAME)
    body = b"".join([chosen[tag] for tag in sorted(chosen)])
    return header(0x00020000, "UL", 4, False) + len(body).to_bytes(4, "little") + body


def _text_element(tag: int, vr: str, value: str) -> bytes:
    data = value.encode("ascii")
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return header(tag, vr, len(data), False) + data
