import csv
import gc
import os
import signal
import stat
import time
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from deid_pipeline.core.deid import batch
from deid_pipeline.core.deid.batch import deidentify_tree
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.pixels.stage import PixelResult
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline_tests.dicom_factory import (
    FIRST_PATIENT,
    FIRST_STUDY,
    SECOND_PATIENT,
    SECOND_STUDY,
    realistic_image,
    write,
    write_two_patient_tree,
)

SECRET = b"batch test secret, not for production"
# Every identifying value the two-patient tree holds, as written in the inputs.
IDENTIFYING_VALUES = sorted({
    part
    for patient in (FIRST_PATIENT, SECOND_PATIENT)
    for part in (*patient.name.split("^"), patient.patient_id, patient.birth_date, patient.phone,
                 patient.address.split(",")[0], patient.address.split(" ")[1])
} | {
    value
    for study in (FIRST_STUDY, SECOND_STUDY)
    for value in (study.accession, study.study_id, study.institution, study.date,
                  *study.referring.split("^"), *study.operator.split("^"))
} | {"Harrowgate", "CTSTATION7", "SN-0042-XYZ"})


def make_engine() -> TagEngine:
    return TagEngine(load_policy(), Pseudonymizer(SECRET))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_mapping(path: Path) -> dict[str, str]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id_old", "id_new"]
    return dict(rows[1:])


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """The two-patient tree de-identified once, on one process."""
    root = tmp_path_factory.mktemp("clean")
    src, dst, work = root / "in", root / "out", root / "work"
    inputs = write_two_patient_tree(src)
    before = tree_bytes(src)
    report = deidentify_tree(src, dst, work, make_engine(), jobs=1)
    return {"src": src, "dst": dst, "work": work, "inputs": inputs, "before": before,
            "report": report}


def test_a_batch_leaves_nothing_frozen_from_the_collector(clean_run):
    # The batch freezes what was alive when it began (core.workers.long_lived_frozen); a
    # caller that runs batches for days gets its garbage collected again after each.
    assert clean_run["report"].written == 4
    assert gc.get_freeze_count() == 0


def test_every_good_file_is_written_and_nothing_quarantined(clean_run):
    report = clean_run["report"]

    assert (report.written, report.quarantined) == (4, 0)
    assert len(list(clean_run["dst"].rglob("*.dcm"))) == 4
    assert not (clean_run["work"] / "quarantine").exists()


def test_outputs_live_under_pseudonym_study_series_and_instance_with_no_phi_in_the_path(
        clean_run):
    for path in clean_run["dst"].rglob("*.dcm"):
        relpath = path.relative_to(clean_run["dst"])
        ds = pydicom.dcmread(path)
        assert relpath.parts == (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                 f"{ds.SOPInstanceUID}.dcm")
        assert ds.PatientID.isdigit() and len(ds.PatientID) == 16
        assert all(part.startswith("2.25.") for part in relpath.parts[1:])
        for value in IDENTIFYING_VALUES + ["1.2.826.0.1.3680043.9"]:
            assert value.upper() not in str(relpath).upper()


def test_mapping_files_map_every_original_to_its_output_and_only_the_owner_can_read_them(
        clean_run):
    work, dst = clean_run["work"], clean_run["dst"]
    uids = read_mapping(work / "uid_mapping.csv")
    patient_ids = read_mapping(work / "patid_mapping.csv")

    for relpath, original in clean_run["inputs"].items():
        output = pydicom.dcmread(next(dst.rglob(f"{uids[original.SOPInstanceUID]}.dcm")))
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            assert uids[original[keyword].value] == output[keyword].value, relpath
        assert patient_ids[original.PatientID] == output.PatientID
    assert set(patient_ids) == {FIRST_PATIENT.patient_id, SECOND_PATIENT.patient_id}
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        assert stat.S_IMODE((work / name).stat().st_mode) == 0o600
        assert not list(dst.rglob(name))


def test_the_report_counts_the_actions_applied(clean_run):
    actions = clean_run["report"].actions
    audit = pd.read_parquet(clean_run["work"] / "audit.parquet")

    assert actions == audit["action"].astype(str).value_counts().to_dict()
    assert actions["clean"] > 0 and actions["delete"] > 0


def test_audit_names_actions_for_every_output_without_original_values(clean_run):
    audit = pd.read_parquet(clean_run["work"] / "audit.parquet")

    assert list(audit.columns) == ["file", "path", "tag", "keyword", "action", "rule"]
    assert audit["file"].nunique() == 4
    assert {"patientHashID", "replaceWithRandomName", "hashID", "delete", "keep"} <= set(
        audit["action"])
    everything = " ".join(audit.astype(str).to_numpy().ravel()).upper()
    for value in IDENTIFYING_VALUES + ["1.2.826.0.1.3680043.9"]:
        assert value.upper() not in everything


def test_no_identifying_value_of_the_input_is_anywhere_in_the_output_bytes(clean_run):
    outputs = b"".join(tree_bytes(clean_run["dst"]).values()).upper()

    for value in IDENTIFYING_VALUES:
        assert value.upper().encode() not in outputs, value


def test_inputs_are_left_unchanged(clean_run):
    assert tree_bytes(clean_run["src"]) == clean_run["before"]


def test_two_runs_and_two_processes_give_byte_identical_outputs(clean_run, tmp_path):
    deidentify_tree(clean_run["src"], tmp_path / "again", tmp_path / "work_again",
                    make_engine(), jobs=1)
    deidentify_tree(clean_run["src"], tmp_path / "parallel", tmp_path / "work_parallel",
                    make_engine(), jobs=2)

    expected = tree_bytes(clean_run["dst"])
    assert tree_bytes(tmp_path / "again") == expected
    assert tree_bytes(tmp_path / "parallel") == expected
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        assert (tmp_path / "work_parallel" / name).read_bytes() == (
            clean_run["work"] / name).read_bytes()


def write_bad_files(src: Path) -> dict[str, str]:
    """Files that must not reach the output, by relative path, with a word of their reason."""
    (src / "notes" / "scan.bin").parent.mkdir(parents=True)
    (src / "notes" / "scan.bin").write_bytes(b"VANTERPOOL ZEPHYRINE, not an image" * 20)
    cut = realistic_image(sop_uid="1.2.826.0.1.3680043.9.7001.3.77", pixels=(64, 64))
    whole = write(cut, src / "cut" / "full.dcm").read_bytes()
    (src / "cut" / "full.dcm").unlink()
    (src / "cut" / "half.dcm").write_bytes(whole[: len(whole) - 4000])
    nameless = realistic_image(sop_uid="1.2.826.0.1.3680043.9.7001.3.78")
    del nameless.SOPInstanceUID
    write(nameless, src / "nameless.dcm")
    # Found after first/ct/1.dcm, whose SOP Instance UID it repeats.
    write(realistic_image(patient=FIRST_PATIENT, study=FIRST_STUDY,
                          sop_uid="1.2.826.0.1.3680043.9.7001.3.1"), src / "zz" / "copy.dcm")
    return {"notes/scan.bin": "not a DICOM file", "cut/half.dcm": "truncated",
            "nameless.dcm": "missing SOP Instance UID", "zz/copy.dcm": "duplicate SOP Instance UID"}


@pytest.mark.filterwarnings("ignore:Expected implicit VR")  # pydicom, reading the non-DICOM file
# In process, and on workers with a file a chunk: the duplicate and its original then reach the
# batch in different chunks from different workers.
@pytest.mark.parametrize("jobs, chunk", [(1, batch.CHUNK), (2, 1)])
def test_bad_files_are_quarantined_with_their_reason_and_the_rest_completes(
        tmp_path, monkeypatch, jobs, chunk):
    monkeypatch.setattr(batch, "CHUNK", chunk)
    src, dst, work = tmp_path / "in", tmp_path / "out", tmp_path / "work"
    good = write_two_patient_tree(src)
    bad = write_bad_files(src)

    report = deidentify_tree(src, dst, work, make_engine(), jobs=jobs)

    assert (report.written, report.quarantined) == (len(good), len(bad))
    reasons = {}
    for reason_file in (work / "quarantine").glob("*.reason.txt"):
        relpath, reason = reason_file.read_text().rstrip("\n").split("\t")
        reasons[relpath] = reason
        copy = reason_file.with_name(reason_file.name.replace(".reason.txt", ".bin"))
        assert copy.read_bytes() == (src / relpath).read_bytes()
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert set(reasons) == set(bad)
    for relpath, expected in bad.items():
        assert expected in reasons[relpath]
    outputs = {p.relative_to(dst).as_posix() for p in dst.rglob("*.dcm")}
    assert len(outputs) == len(good)
    assert sum(report.reasons.values()) == len(bad)
    # Audit rows of written files only: the duplicate's (same output path) are not there.
    audit = pd.read_parquet(work / "audit.parquet")
    assert set(audit["file"].astype(str)) == outputs
    assert not audit.duplicated(["file", "path"]).any()


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the malformed UID, on purpose
def test_values_kept_by_policy_cannot_lead_outside_the_output_tree(tmp_path):
    """retain_uids keeps a malformed UID as it is: it names a folder, never a path."""
    src, dst, work = tmp_path / "in", tmp_path / "out", tmp_path / "work"
    ds = realistic_image()
    ds.SeriesInstanceUID = "../../../escaped"
    write(ds, src / "odd.dcm")
    policy = tmp_path / "site.yaml"
    policy.write_text("profile:\n  options: [retain_uids]\n")
    engine = TagEngine(load_policy([policy]), Pseudonymizer(SECRET))

    report = deidentify_tree(src, dst, work, engine, jobs=1)

    assert report.written == 1
    (output,) = [p for p in tmp_path.rglob("*.dcm") if not p.is_relative_to(src)]
    assert output.is_relative_to(dst)
    assert pydicom.dcmread(output).SeriesInstanceUID == "../../../escaped"


def test_a_long_name_glued_to_other_letters_in_a_description_is_cleaned_not_quarantined(
        tmp_path):
    src, dst, work = tmp_path / "in", tmp_path / "out", tmp_path / "work"
    ds = realistic_image()
    ds.PatientName = "QUIMBLEFORTH^ZARA"
    ds.StudyDescription = "CT QuimbleforthZara follow-up"  # cleaned by Clean Descriptors
    write(ds, src / "glued.dcm")

    report = deidentify_tree(src, dst, work, make_engine(), jobs=1)

    assert (report.written, report.quarantined) == (1, 0)
    (output,) = dst.rglob("*.dcm")
    assert b"QUIMBLEFORTH" not in output.read_bytes().upper()
    assert pydicom.dcmread(output).StudyDescription == "CT follow-up"


def test_engine_and_redactor_cross_to_spawned_workers():
    """Dagster's run workers start process pools that pickle what they hand over."""
    import pickle

    from deid_pipeline.core.deid.engine import TagEngine
    from deid_pipeline.core.pixels.stage import PixelRedactor
    from deid_pipeline.core.policy.rules import load_policy
    from deid_pipeline.core.pseudonyms import Pseudonymizer

    engine = pickle.loads(pickle.dumps(TagEngine(load_policy(), Pseudonymizer(b"k"))))
    assert engine.profile.action_for(0x00100010, ()) == "Z"
    assert pickle.loads(pickle.dumps(PixelRedactor()))._reader is None


def test_a_truncated_copy_found_first_leaves_the_instance_to_the_intact_one(tmp_path):
    """Duplicates are settled by what was written: a copy that fails does not claim its UID."""
    src, dst, work = tmp_path / "in", tmp_path / "out", tmp_path / "work"
    whole = write(realistic_image(sop_uid="1.2.826.0.1.3680043.9.7001.3.90", pixels=(64, 64)),
                  src / "b_whole.dcm").read_bytes()
    (src / "a_cut.dcm").write_bytes(whole[: len(whole) - 4000])

    report = deidentify_tree(src, dst, work, make_engine(), jobs=1)

    assert (report.written, report.quarantined) == (1, 1)
    assert "truncated" in next(iter(report.reasons))


def test_a_killed_runs_hidden_leftovers_are_cleared_and_never_visible(clean_run, tmp_path):
    dst = tmp_path / "out"
    leftover = dst / "some" / ".1.2.3.dcm.abcd.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")

    deidentify_tree(clean_run["src"], dst, tmp_path / "work", make_engine(), jobs=1)

    assert not leftover.exists()
    assert not list(dst.rglob(".*"))
    assert tree_bytes(dst) == tree_bytes(clean_run["dst"])


def test_audit_is_written_in_row_groups_as_the_batch_goes(clean_run, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from deid_pipeline.core.deid import audit

    monkeypatch.setattr(audit, "ROWS_PER_GROUP", 50)
    monkeypatch.setattr(batch, "CHUNK", 1)  # a batch of rows a file
    deidentify_tree(clean_run["src"], tmp_path / "out", tmp_path / "work", make_engine(), jobs=1)

    grouped = pq.ParquetFile(tmp_path / "work" / "audit.parquet")
    assert grouped.num_row_groups > 1
    assert grouped.read().to_pandas().astype(str).equals(
        pd.read_parquet(clean_run["work"] / "audit.parquet").astype(str))


FATAL_PATIENT_ID = "FATAL-0001"


class FatalRedactor:
    """Stands in for a pixel stage whose native code crashes on one patient's image: it kills
    its process there and finds no text elsewhere."""

    def redact(self, ds, known, sex="", ages=()):
        if ds.PatientID == FATAL_PATIENT_ID:
            os.kill(os.getpid(), signal.SIGKILL)
        return PixelResult()


@pytest.mark.parametrize("chunk", [1, batch.CHUNK])
def test_a_file_that_kills_its_worker_is_quarantined_and_the_rest_written(
        tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(batch, "CHUNK", chunk)
    src, dst, work = tmp_path / "in", tmp_path / "out", tmp_path / "work"
    good = write_two_patient_tree(src)
    fatal = realistic_image(sop_uid="1.2.826.0.1.3680043.9.7001.3.99")
    fatal.PatientID = FATAL_PATIENT_ID
    write(fatal, src / "b_fatal.dcm")

    report = deidentify_tree(src, dst, work, make_engine(), jobs=2, redactor=FatalRedactor())

    assert (report.written, report.quarantined) == (len(good), 1)
    assert report.reasons == {batch.DIED: 1}
    (reason_file,) = (work / "quarantine").glob("*.reason.txt")
    assert reason_file.read_text().startswith("b_fatal.dcm\t")
    assert len(list(dst.rglob("*.dcm"))) == len(good)
    assert not list(dst.rglob(".*"))  # nothing the stopped workers had staged
    audit = pd.read_parquet(work / "audit.parquet")
    assert set(audit["file"].astype(str)) == {p.relative_to(dst).as_posix()
                                              for p in dst.rglob("*.dcm")}


class StallingRedactor:
    """Stands in for a pixel stage whose codec loops for ever on one patient's image."""

    def redact(self, ds, known, sex="", ages=()):
        if ds.PatientID == FATAL_PATIENT_ID:
            time.sleep(600)
        return PixelResult()


def test_a_file_that_stalls_its_worker_past_the_deadline_is_quarantined(tmp_path, capfd):
    src, dst, work = tmp_path / "in", tmp_path / "out", tmp_path / "work"
    good = write_two_patient_tree(src)
    stalling = realistic_image(sop_uid="1.2.826.0.1.3680043.9.7001.3.98")
    stalling.PatientID = FATAL_PATIENT_ID
    write(stalling, src / "b_stalling.dcm")

    report = deidentify_tree(src, dst, work, make_engine(), jobs=2,
                             redactor=StallingRedactor(), deadline_s=1.0)

    assert (report.written, report.quarantined) == (len(good), 1)
    assert report.reasons == {batch.DIED: 1}
    assert len(list(dst.rglob("*.dcm"))) == len(good)
    assert "most recent call first" not in capfd.readouterr().err  # no stack dump shown
