"""The tag stage over the synthetic corpus, measured the way the Tag issue asks: no planted
identifying value left, UIDs and Patient IDs consistent, dates shifted with intervals kept,
retained elements unchanged, every MIDI-B tag check passing."""

import csv
import io
import re
from collections import defaultdict

import pydicom
import pytest
from pydicom.uid import UID, ExplicitVRLittleEndian

from deid_pipeline.core.deid.batch import deidentify_tree
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline.core.validate.midib import MidibValidator, load_answer_key, scoring

RETAINED = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
            "PhotometricInterpretation", "SamplesPerPixel", "NumberOfFrames", "PixelSpacing",
            "KVP", "SliceThickness", "RepetitionTime", "EchoTime", "Modality", "SOPClassUID")
TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


@pytest.fixture(scope="module")
def run(small_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("deid")
    engine = TagEngine(load_policy(), Pseudonymizer(b"corpus-test-secret"))
    report = deidentify_tree(small_corpus.root, out / "dst", out / "work", engine, jobs=2)
    inputs = {str(ds.SOPInstanceUID): ds for ds in
              (pydicom.dcmread(p) for p in small_corpus.root.rglob("*.dcm"))}
    outputs = {p: pydicom.dcmread(p) for p in (out / "dst").rglob("*.dcm")}
    with open(out / "work" / "uid_mapping.csv", newline="") as fh:
        uid_map = {row["id_old"]: row["id_new"] for row in csv.DictReader(fh)}
    original_of = {uid_map[str(ds.SOPInstanceUID)]: ds for ds in inputs.values()}
    pairs = [(original_of[str(ds.SOPInstanceUID)], ds, path) for path, ds in outputs.items()]
    return report, out, pairs, uid_map


def test_every_file_is_written_none_quarantined(run, small_corpus):
    report, _, pairs, _ = run
    assert (report.written, report.quarantined) == (small_corpus.files + small_corpus.slides, 0)
    assert len(pairs) == small_corpus.files


def test_every_midi_b_tag_check_passes(run, small_corpus):
    _, out, _, _ = run
    results = MidibValidator.from_files(small_corpus.answer_key, out / "work").results(out / "dst")
    table = scoring(results).set_index("Category")
    failed = results.loc[~results["check_passed"], ["action", "tag_name", "file_value"]]
    assert table.loc["All", "Score"] == 1.0, failed.drop_duplicates().head(20)
    assert table.loc["All", "Total"] > 5000


def _planted_values(check) -> set[str]:
    """The strings a removed value must not leave anywhere: the whole value (names written with
    spaces too), each part of a person name, long digit runs. Single generic words of a longer
    value ("MEDICAL" of an institution) are not judged across the file: other elements may hold
    them legitimately (a manufacturer's name)."""
    text = check.action_text or check.value
    values = {text.upper(), text.replace("^", " ").strip().upper()}
    if "^" in text:
        values |= {part.upper() for part in re.split(r"[\^ ]+", text) if len(part) >= 3}
    values |= set(re.findall(r"\d{6,}", text))
    return {v for v in values if len(v) >= 3}


def test_no_planted_identifying_value_in_output_bytes_or_paths(run, small_corpus):
    _, out, pairs, _ = run
    planted = defaultdict(set)
    for check in load_answer_key(small_corpus.answer_key):
        if check.action == "text_removed":
            planted[check.instance] |= _planted_values(check)
        if check.action in ("patid_consistent", "uid_changed"):
            planted[check.instance].add(check.value.upper())
    for original, _, path in pairs:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # inflate deflated files
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        text = buffer.getvalue().decode("latin-1").upper() + str(path.relative_to(out)).upper()
        leaked = {v for v in planted[str(original.SOPInstanceUID)]
                  if re.search(rf"(?<![A-Z0-9]){re.escape(v)}(?![A-Z0-9])", text)}
        assert not leaked, f"{path.name}: {len(leaked)} planted value(s) left"


def test_uids_valid_changed_and_consistent(run):
    _, _, pairs, uid_map = run
    assert len(set(uid_map.values())) == len(uid_map)  # distinct originals never collide
    for original, ds, _ in pairs:
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                        "FrameOfReferenceUID"):
            if keyword in original:
                new = str(ds[keyword].value)
                assert new == uid_map[str(original[keyword].value)] and new.startswith("2.25.")
                assert UID(new).is_valid
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_patient_ids_and_date_shifts_are_consistent_per_patient(run):
    _, _, pairs, _ = run
    pseudonym, shift = defaultdict(set), defaultdict(set)
    for original, ds, _ in pairs:
        pseudonym[original.PatientID].add(ds.PatientID)
        for keyword in ("StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate"):
            if original.get(keyword):
                before = pydicom.valuerep.DA(original[keyword].value)
                after = pydicom.valuerep.DA(ds[keyword].value)
                shift[original.PatientID].add((after - before).days)
    assert all(len(p) == 1 for p in pseudonym.values())
    assert len({next(iter(p)) for p in pseudonym.values()}) == len(pseudonym)
    assert all(len(days) == 1 and next(iter(days)) < 0 for days in shift.values())


def test_retained_elements_unchanged_and_type_2_present(run):
    _, _, pairs, _ = run
    for original, ds, _ in pairs:
        for keyword in RETAINED:
            if keyword in original:
                assert ds[keyword].value == original[keyword].value, keyword
        assert ds.PixelData == original.PixelData  # tag-only: pixel bytes untouched
        assert all(keyword in ds for keyword in TYPE_2)
        assert ds.PatientIdentityRemoved == "YES"
