"""The stream path (core.deid.stream_deid) gives what the pydicom path gives — the same output
bytes, output path, audit rows, mappings and identifying values — on every file of the synthetic
corpus, on re-encodings of it (implicit VR, deflated, undefined lengths) and on Latin-1 and UTF-8
text; what it cannot do as pydicom does, it refuses with NotPlain. The batch's tables and outputs
are the same with and without it."""

from pathlib import Path

import pandas as pd
import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from deid_pipeline.core.deid import batch
from deid_pipeline.core.deid.batch import DEFER_SIZE, output_relpath, relpath_of
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.deid.stream import NotPlain
from deid_pipeline.core.deid.stream_deid import deidentify_stream
from deid_pipeline.core.deid.writer import write_dicom
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline_tests.core.deid.test_raw_writer import native_files, reencoded
from deid_pipeline_tests.dicom_factory import Patient, realistic_image, write

SECRET = b"stream path test secret"


@pytest.fixture(scope="module")
def engine() -> TagEngine:
    return TagEngine(load_policy(), Pseudonymizer(SECRET))


def assert_as_the_pydicom_path(path: Path, engine: TagEngine, tmp_path: Path) -> None:
    plain = deidentify_stream(path.read_bytes(), engine)
    ds = pydicom.dcmread(path, defer_size=DEFER_SIZE)
    known = gather(ds)
    result = engine.deidentify(ds, known)
    out = tmp_path / "pydicom.dcm"
    write_dicom(ds, out)
    assert b"".join(plain.parts) == out.read_bytes(), path.name
    assert plain.known == known
    assert plain.result.audit == result.audit
    assert plain.result.uid_map == result.uid_map
    assert plain.result.patient_id == result.patient_id
    assert plain.result.generated == result.generated
    assert relpath_of(plain.patient, plain.study, plain.series, plain.instance) == \
        output_relpath(ds)
    assert plain.syntax == str(ds.file_meta.TransferSyntaxUID)


def test_the_corpus_takes_the_stream_path_with_the_pydicom_paths_result(
        small_corpus, engine, tmp_path):
    files = sorted(small_corpus.root.rglob("*.dcm"))
    plain = 0
    for path in files:
        try:
            assert_as_the_pydicom_path(path, engine, tmp_path)
        except NotPlain:
            continue
        plain += 1
    # What is left to pydicom: big endian files and implicit VR files with private elements.
    assert plain >= 0.8 * len(files)


@pytest.mark.parametrize("syntax, undefined", [
    (ImplicitVRLittleEndian, False), (DeflatedExplicitVRLittleEndian, False),
    (ExplicitVRLittleEndian, True)])
def test_reencoded_files_take_the_stream_path_with_the_pydicom_paths_result(
        small_corpus, engine, tmp_path, syntax, undefined):
    taken = 0
    for index, path in enumerate(native_files(small_corpus.root, 6)):
        source = reencoded(path, tmp_path / f"in{index}.dcm", syntax, undefined)
        if syntax == ImplicitVRLittleEndian:
            ds = pydicom.dcmread(source)
            for tag in [t for t in ds.keys() if t.is_private]:
                del ds[tag]
            ds.save_as(source, enforce_file_format=True)
        assert_as_the_pydicom_path(source, engine, tmp_path)
        taken += 1
    assert taken == 6


@pytest.mark.parametrize("charset, name", [("ISO_IR 100", "Müller^Jürgen"),
                                           ("ISO_IR 192", "Ødegård^Åse"), (None, "Doe^Jane")])
def test_text_in_the_files_character_set_is_read_and_written_as_pydicom_does(
        engine, tmp_path, charset, name):
    ds = realistic_image(patient=Patient(name=name), pixels=(8, 8))
    if charset is None:
        del ds.SpecificCharacterSet
    else:
        ds.SpecificCharacterSet = charset
    ds.StudyDescription = f"Follow-up {name.split('^')[0]} nach Sturz"
    source = write(ds, tmp_path / "in.dcm")
    assert_as_the_pydicom_path(source, engine, tmp_path)


@pytest.mark.parametrize("damage", ["big endian", "cut short", "no preamble", "code extensions",
                                    "no SOP Instance UID", "elements out of order"])
def test_what_the_stream_cannot_do_as_pydicom_does_is_refused(engine, tmp_path, damage):
    ds = realistic_image(pixels=(8, 8))
    source = write(ds, tmp_path / "in.dcm")
    if damage == "big endian":
        source = reencoded(source, tmp_path / "be.dcm", ExplicitVRBigEndian)
    data = source.read_bytes()
    if damage == "cut short":
        data = data[:-7]
    elif damage == "no preamble":
        data = data[128:]
    elif damage in ("code extensions", "no SOP Instance UID"):
        ds = pydicom.dcmread(source)
        if damage == "code extensions":
            ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
        else:
            del ds.SOPInstanceUID
        data = write(ds, tmp_path / "changed.dcm").read_bytes()
    elif damage == "elements out of order":
        data = data.replace(b"\x08\x00\x60\x00CS", b"\x08\x00\x60\x10CS", 1)
    with pytest.raises(NotPlain):
        deidentify_stream(data, engine)


def test_a_batch_writes_the_same_with_and_without_the_stream_path(
        small_corpus, engine, tmp_path, monkeypatch):
    first = batch.deidentify_tree(small_corpus.root, tmp_path / "a", tmp_path / "wa", engine)

    def refused(data, engine):
        raise NotPlain

    monkeypatch.setattr(batch, "deidentify_stream", refused)
    second = batch.deidentify_tree(small_corpus.root, tmp_path / "b", tmp_path / "wb", engine)
    assert (first.written, first.quarantined) == (second.written, second.quarantined)
    outputs = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.dcm"))
    assert outputs == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.dcm"))
    for relpath in outputs:
        assert (tmp_path / "a" / relpath).read_bytes() == (tmp_path / "b" / relpath).read_bytes()
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        assert (tmp_path / "wa" / name).read_bytes() == (tmp_path / "wb" / name).read_bytes()
    for name in ("audit.parquet", "files.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "wa" / name),
                                      pd.read_parquet(tmp_path / "wb" / name))


def test_a_value_the_policy_keeps_is_caught_by_the_leak_gate_on_the_stream_path(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("rules:\n  - keyword: InstitutionName\n    action: keep\n")
    engine = TagEngine(load_policy([site]), Pseudonymizer(SECRET))
    source = write(realistic_image(pixels=(8, 8)), tmp_path / "in" / "a.dcm")
    assert deidentify_stream(source.read_bytes(), engine).screened  # a plain file

    report = batch.deidentify_tree(source.parent, tmp_path / "out", tmp_path / "work", engine)

    assert (report.written, report.quarantined) == (0, 1)
    assert "place or contact in (0008,0080)" in next(iter(report.reasons))
    assert not list((tmp_path / "out").rglob("*.dcm"))


def test_a_preamble_holding_a_name_comes_out_empty_on_both_paths(engine, tmp_path):
    ds = realistic_image()
    ds.preamble = f"{Patient().name} {Patient().patient_id}".encode().ljust(128, b" ")
    source = write(ds, tmp_path / "named_preamble.dcm")
    assert source.read_bytes()[:len(Patient().name)] == Patient().name.encode()

    assert_as_the_pydicom_path(source, engine, tmp_path)  # the same bytes either way
    plain = deidentify_stream(source.read_bytes(), engine)
    assert b"".join(plain.parts)[:132] == bytes(128) + b"DICM"
