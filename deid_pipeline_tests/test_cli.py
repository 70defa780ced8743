import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from deid_pipeline.cli import EXIT_OK, EXIT_QUARANTINE, EXIT_USAGE, main
from deid_pipeline.core.quarantine import read_reason
from deid_pipeline_tests.dicom_factory import (
    FIRST_PATIENT,
    FIRST_STUDY,
    realistic_image,
    write,
    write_two_patient_tree,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
SECRET = "cli test secret, not for production"


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    monkeypatch.delenv("DEID_SECRET_FILE", raising=False)


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "in"
    write_two_patient_tree(src)
    return src


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_all_good_exits_0_and_reports_what_it_did(secret, tree, tmp_path, capsys):
    code = main(["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                 "--jobs", "1"])

    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "4 de-identified, 0 quarantined" in out
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 4


@pytest.mark.filterwarnings("ignore:End of file reached")  # pydicom, reading broken.dcm
def test_quarantine_exits_3_and_the_rest_of_the_batch_completes(secret, tree, tmp_path, capsys):
    (tree / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)

    code = main(["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                 "--jobs", "1"])

    assert code == EXIT_QUARANTINE
    assert "4 de-identified, 1 quarantined" in capsys.readouterr().out
    assert len(list((tmp_path / "work" / "quarantine").glob("*.reason.txt"))) == 1


def test_a_folder_that_cannot_be_read_is_quarantined_not_passed_over(secret, tree, tmp_path,
                                                                     deny_access, capsys):
    write(realistic_image(sop_uid="1.2.826.0.1.3680043.9.7777.3.99"), tree / "closed" / "1.dcm")
    deny_access(tree / "closed")

    code = main(["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                 "--jobs", "1"])

    assert code == EXIT_QUARANTINE
    assert "4 de-identified, 1 quarantined" in capsys.readouterr().out
    (reason,) = (tmp_path / "work" / "quarantine").glob("*.reason.txt")
    assert read_reason(reason) == ("closed", "folder cannot be read (permission denied)")


def test_an_input_folder_that_cannot_be_read_is_a_usage_error(secret, tree, tmp_path,
                                                              deny_access, capsys):
    deny_access(tree)

    code = main(["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work")])

    assert code == EXIT_USAGE
    assert "input folder cannot be read" in capsys.readouterr().err


def test_a_user_policy_given_with_policy_is_applied(secret, tree, tmp_path):
    policy = tmp_path / "site.yaml"
    policy.write_text("rules:\n  - keyword: InstitutionName\n    action: replaceWithLiteral\n"
                      "    value: SITE 7\n")

    code = main(["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                 "--policy", str(policy), "--jobs", "1"])

    assert code == EXIT_OK
    outputs = [pydicom.dcmread(p) for p in (tmp_path / "out").rglob("*.dcm")]
    assert {ds.InstitutionName for ds in outputs} == {"SITE 7"}


def test_jobs_2_gives_the_same_bytes_as_jobs_1(secret, tree, tmp_path):
    for jobs in ("1", "2"):
        assert main(["deid", str(tree), str(tmp_path / f"out{jobs}"),
                     "--work", str(tmp_path / f"work{jobs}"), "--jobs", jobs]) == EXIT_OK

    assert tree_bytes(tmp_path / "out1") == tree_bytes(tmp_path / "out2")
    assert tree_bytes(tmp_path / "out1")


@pytest.mark.parametrize(("case", "message"), [
    ("missing input", "input folder not found"),
    ("output inside input", "the output folder must not be inside the input folder"),
    ("work inside output", "the work folder must not be inside the output folder"),
    ("no secret", "no pseudonymisation secret"),
    ("bad policy", "site.yaml:2: unknown action 'scramble'"),
    ("bad jobs", "not a positive whole number: 0"),
])
def test_usage_errors_exit_2_with_one_line_and_no_traceback(secret, tree, tmp_path, monkeypatch,
                                                            capsys, case, message):
    out, work = tmp_path / "out", tmp_path / "work"
    args = {
        "missing input": [str(tmp_path / "absent"), str(out), "--work", str(work)],
        "output inside input": [str(tree), str(tree / "out"), "--work", str(work)],
        "work inside output": [str(tree), str(out), "--work", str(out / "work")],
        "no secret": [str(tree), str(out), "--work", str(work)],
        "bad policy": [str(tree), str(out), "--work", str(work),
                       "--policy", str(tmp_path / "site.yaml")],
        "bad jobs": [str(tree), str(out), "--work", str(work), "--jobs", "0"],
    }[case]
    if case == "no secret":
        monkeypatch.delenv("DEID_SECRET")
    (tmp_path / "site.yaml").write_text("rules:\n  - keyword: PatientID\n    action: scramble\n")

    code = main(["deid", *args])

    assert code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("deid-pipeline: error: ") and message in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists() or not list(out.rglob("*.dcm"))


@pytest.mark.parametrize(("command", "message"), [
    (["synth", "{tmp}/corpus", "--seed", "-5"], "not a seed (a whole number from 0): -5"),
    (["deid", "{tree}", "{tmp}/out", "--work", "{tmp}/notes.db"],
     "cannot create work folder"),
    (["validate", "{tree}", "--answers", "{tmp}/notes.db", "--mappings", "{tmp}",
      "--report", "{tmp}/report.xlsx", "--no-pixels"], "not a MIDI-B answer key"),
    (["validate", "{tree}", "--answers", "{tmp}/notes.db", "--mappings", "{tmp}",
      "--report", "{tmp}", "--no-pixels"], "a folder where a file is to be written"),
    (["demo", "--partition", "2999-01-01", "--data-root", "{tmp}/data"],
     "no partition for 2999-01-01 (the days are 2024-01-01 to "),
])
def test_bad_values_of_other_commands_exit_2_with_the_reason(secret, tree, tmp_path, capsys,
                                                             command, message):
    (tmp_path / "notes.db").write_text("not SQLite\n")

    code = main([part.format(tmp=tmp_path, tree=tree) for part in command])

    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "data").exists()  # nothing written for a day without a partition


def test_the_command_in_its_own_process_quarantines_and_leaves_inputs_unchanged(tree, tmp_path):
    """Through a real process: exit status, stderr and the inputs as a user sees them."""
    (tree / "notes.bin").write_bytes(FIRST_PATIENT.name.encode() * 10)
    before = tree_bytes(tree)
    env = {**os.environ, "DEID_SECRET": SECRET}
    env.pop("DEID_SECRET_FILE", None)

    result = subprocess.run(
        [sys.executable, "-m", "deid_pipeline.cli", "deid", str(tree), str(tmp_path / "out"),
         "--work", str(tmp_path / "work"), "--jobs", "2"],
        env=env, cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == EXIT_QUARANTINE, result.stderr
    assert "4 de-identified, 1 quarantined" in result.stdout
    assert "Traceback" not in result.stderr
    assert tree_bytes(tree) == before
    outputs = b"".join(tree_bytes(tmp_path / "out").values()).upper()
    for value in (*FIRST_PATIENT.name.split("^"), FIRST_PATIENT.patient_id,
                  FIRST_PATIENT.birth_date, FIRST_STUDY.accession, FIRST_STUDY.institution):
        assert value.upper().encode() not in outputs


def test_validate_scores_a_deidentified_tree_and_writes_the_workbook(tmp_path, small_corpus,
                                                                      deid_secret):
    import openpyxl

    from deid_pipeline.cli import main

    assert main(["deid", str(small_corpus.root), str(tmp_path / "out"), "--work",
                 str(tmp_path / "work"), "--no-pixels"]) == 0
    code = main(["validate", str(tmp_path / "out"), "--answers", str(small_corpus.answer_key),
                 "--mappings", str(tmp_path / "work"), "--report", str(tmp_path / "r.xlsx"),
                 "--no-pixels"])
    assert code == 0
    assert openpyxl.load_workbook(tmp_path / "r.xlsx").sheetnames[:3] == [
        "Scoring", "Actions", "Categories"]


def test_pixel_zones_of_a_user_policy_are_blacked_out(secret, tree, tmp_path):
    policy = tmp_path / "site.yaml"
    # The lower right quarter of every image, whatever the device (the factory's pixels there
    # are far from black).
    policy.write_text("pixels:\n  zones:\n    - manufacturer: '.*'\n      units: fraction\n"
                      "      boxes: [[0.5, 0.5, 1.0, 1.0]]\n")

    code = main(["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                 "--policy", str(policy), "--jobs", "1"])

    assert code == EXIT_OK
    for path in (tmp_path / "out").rglob("*.dcm"):
        pixels = pydicom.dcmread(path).pixel_array
        rows, columns = pixels.shape[-2:]
        assert (pixels[..., rows // 2:, columns // 2:] == 0).all()
        assert pixels[..., :rows // 2, :columns // 2].any()
