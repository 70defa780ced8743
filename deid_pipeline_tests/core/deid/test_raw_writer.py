"""The writer's own encoding (raw elements copied, changed ones encoded) writes byte for byte what
pydicom writes, on every transfer syntax of the synthetic corpus and on the encodings and shapes
the corpus lacks: implicit VR, big endian, deflated, undefined lengths, private blocks (a deflated
data set compared inflated)."""

import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from deid_pipeline.core.deid import writer
from deid_pipeline.core.deid.batch import DEFER_SIZE
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.deid.free_text import PhraseIndex, literal_spans
from deid_pipeline.core.deid.writer import encode_dataset, write_dicom
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline_tests.dicom_factory import realistic_image, write

SECRET = b"raw writer test secret"


@pytest.fixture(scope="module")
def engine() -> TagEngine:
    return TagEngine(load_policy(), Pseudonymizer(SECRET))


def deidentified(path: Path, engine: TagEngine, defer_size=DEFER_SIZE) -> pydicom.Dataset:
    ds = pydicom.dcmread(path, defer_size=defer_size)
    engine.deidentify(ds)
    return ds


def pydicoms_bytes(path: Path, engine: TagEngine, out: Path) -> bytes:
    """What pydicom writes for the same file, de-identified the same way."""
    ds = deidentified(path, engine)
    ds.save_as(out, enforce_file_format=True)
    return out.read_bytes()


def inflated(data: bytes) -> bytes:
    """A file's bytes with a deflated data set inflated: the writer deflates with zlib-ng, pydicom
    with zlib, the same format at the same level but not the same bytes."""
    meta_end = 144 + int.from_bytes(data[140:144], "little")  # after (0002,0000)'s group length
    if DeflatedExplicitVRLittleEndian.encode() not in data[132:meta_end]:
        return data
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    body = inflater.decompress(data[meta_end:])
    assert inflater.eof and inflater.unused_data in (b"", b"\x00")
    return data[:meta_end] + body


def assert_written_as_pydicom_writes(path: Path, engine: TagEngine, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.dcm", tmp_path / "theirs.dcm"
    returned = write_dicom(deidentified(path, engine), ours)
    assert inflated(ours.read_bytes()) == inflated(pydicoms_bytes(path, engine, theirs)), path.name
    # The pydicom path of the writer returns the same bytes for the gate.
    reference = tmp_path / "reference.dcm"
    ds = deidentified(path, engine)
    syntax = pydicom.uid.UID(str(ds.file_meta.TransferSyntaxUID))
    assert returned == writer._write_with_pydicom(ds, reference, syntax)
    assert inflated(reference.read_bytes()) == inflated(ours.read_bytes())


def reencoded(source: Path, target: Path, syntax: str, undefined_lengths: bool = False) -> Path:
    ds = pydicom.dcmread(source)
    if syntax == ExplicitVRBigEndian:
        for elem in ds.iterall():
            elem.value  # decoded, to be encoded big endian  # noqa: B018
        ds.file_meta.TransferSyntaxUID = syntax
        pydicom.dcmwrite(target, ds, little_endian=False, implicit_vr=False, force_encoding=True)
        return target
    ds.file_meta.TransferSyntaxUID = syntax
    if undefined_lengths:
        for elem in ds.iterall():
            if elem.VR == "SQ":
                elem.is_undefined_length = True
                for item in elem.value:
                    item.is_undefined_length_sequence_item = True
    ds.save_as(target, enforce_file_format=True)
    return target


def native_files(root: Path, count: int) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if not ds.file_meta.TransferSyntaxUID.is_compressed:
            found.append(path)
        if len(found) == count:
            break
    return found


def test_every_file_of_the_corpus_is_written_as_pydicom_writes_it(small_corpus, engine, tmp_path):
    files = sorted(small_corpus.root.rglob("*.dcm"))
    syntaxes = {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                for p in files}
    assert len(syntaxes) > 3
    for path in files:
        assert_written_as_pydicom_writes(path, engine, tmp_path)


@pytest.mark.parametrize("syntax, undefined", [
    (ImplicitVRLittleEndian, False), (ExplicitVRBigEndian, False),
    (DeflatedExplicitVRLittleEndian, False), (ExplicitVRLittleEndian, True),
    (ImplicitVRLittleEndian, True)])
def test_reencoded_corpus_files_are_written_as_pydicom_writes_them(
        small_corpus, engine, tmp_path, syntax, undefined):
    for index, path in enumerate(native_files(small_corpus.root, 6)):
        source = reencoded(path, tmp_path / f"in{index}.dcm", syntax, undefined)
        assert_written_as_pydicom_writes(source, engine, tmp_path)


def test_the_fast_path_writes_the_corpus_without_pydicoms_writer(
        small_corpus, engine, tmp_path, monkeypatch):
    def refused(*args):
        raise AssertionError("written by pydicom")

    monkeypatch.setattr(writer, "_write_with_pydicom", refused)
    for path in native_files(small_corpus.root, 4):
        write_dicom(deidentified(path, engine), tmp_path / "out.dcm")


def test_private_blocks_sequences_and_new_items_are_encoded_as_pydicom_encodes_them(tmp_path):
    ds = realistic_image(pixels=(8, 8))
    block = ds.private_block(0x0009, "ACME RAW WRITER", create=True)
    block.add_new(0x01, "LO", "kept text")
    block.add_new(0x02, "US", 7)
    item = pydicom.Dataset()
    item.CodeValue = "1"
    item.CodeMeaning = "Ünïcödé meaning"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ConceptNameCodeSequence = [item]
    ds.ConceptNameCodeSequence[0].is_undefined_length_sequence_item = True
    ds["ConceptNameCodeSequence"].is_undefined_length = True
    source = write(ds, tmp_path / "in.dcm")
    for implicit, little in ((False, True), (True, True)):
        read = pydicom.dcmread(source)
        read.ContentSequence = [item]  # a new item: no encoding of its own
        read[0x00091001] = DataElement(0x00091001, "LO", "changed")
        expected = DicomBytesIO()
        expected.is_implicit_VR, expected.is_little_endian = implicit, little
        reread = pydicom.dcmread(source)
        reread.ContentSequence = [item]
        reread[0x00091001] = DataElement(0x00091001, "LO", "changed")
        write_dataset(expected, reread)
        assert encode_dataset(read, implicit, little) == expected.getvalue()


@pytest.mark.parametrize("change", ["odd pixels", "charset changed", "after pixels", "no preamble"])
def test_what_the_fast_path_leaves_to_pydicom_is_still_written_as_pydicom_writes_it(
        tmp_path, change):
    ds = realistic_image(pixels=(8, 8))
    ds.SpecificCharacterSet = "ISO_IR 100"
    if change == "odd pixels":
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelRepresentation = 0
        ds.Rows, ds.Columns = 3, 3
        ds.PixelData = b"\x01" * 9
    if change == "after pixels":
        ds.DataSetTrailingPadding = b"\x00" * 6
    source = write(ds, tmp_path / "in.dcm")
    outputs = []
    for name in ("ours", "theirs"):
        read = pydicom.dcmread(source, defer_size="1 KB")
        if change == "charset changed":
            read.SpecificCharacterSet = "ISO_IR 192"
        if change == "no preamble":
            read.preamble = None
        out = tmp_path / f"{name}.dcm"
        if name == "ours":
            write_dicom(read, out)
        else:
            read.save_as(out, enforce_file_format=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_the_phrase_index_finds_what_the_literal_search_finds():
    phrases = {"SMITH", "JOHN", "JS", "20200131", "31/01/2020", "JAN 31 2020", "ACME HOSPITAL",
               "12345", "Ü", "ß"}
    texts = ["John Smith seen 31/01/2020 at Acme Hospital", "JS", "smithson", "", "CT CHEST",
             "Patient 12345, 20200131; JAN 31 2020", "straße ü", "JSJS JS-JS"]
    index = PhraseIndex(phrases)
    for text in texts:
        assert sorted(index.spans(text)) == sorted(literal_spans(text, phrases)), text
