"""The key of every pseudonym: nothing runs without one (no default key, the demo's local one
aside, and never in production), it shows up in no output, and what re-identifies (mapping files,
quarantine) is owner-only and outside the output tree."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deid_pipeline.cli import EXIT_QUARANTINE, EXIT_USAGE, main
from deid_pipeline.core.pseudonyms import (
    MIN_PRODUCTION_SECRET_BYTES,
    MissingSecretError,
    Pseudonymizer,
)
from deid_pipeline.core.quarantine import OWNER_ONLY_DIR, OWNER_ONLY_FILE
from deid_pipeline_tests.dicom_factory import write_two_patient_tree

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
# Long enough for production, and unlike anything a file or a table holds by chance.
SECRET = "Kx7-secret-QZ19-never-in-an-output-" + "9f3a" * 8
KEY_VARIABLES = ("DEID_SECRET", "DEID_SECRET_FILE", "DEID_ENV", "DEID_DEBUG")


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "in"
    write_two_patient_tree(src)
    (src / "broken.dcm").write_bytes(bytes(128) + b"DICM" + b"\xff" * 40)  # to the quarantine
    return src


def run(args: list[str], umask: int = 0o022, **env: str) -> subprocess.CompletedProcess:
    clean = {name: value for name, value in os.environ.items() if name not in KEY_VARIABLES}
    return subprocess.run([sys.executable, "-m", "deid_pipeline.cli", *args],
                          env={**clean, **env}, cwd=REPOSITORY_ROOT, capture_output=True,
                          text=True, timeout=300, preexec_fn=lambda: os.umask(umask))


def usage_error(args: list[str], capsys, monkeypatch, **env: str) -> str:
    """Run the command in this process with only `env`'s key variables; its one-line error."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(args)
    captured = capsys.readouterr()
    assert code == EXIT_USAGE
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("deid-pipeline: error: ")
    return captured.err


@pytest.mark.parametrize(("env", "message"), [
    ({}, "no pseudonymisation secret: set DEID_SECRET or DEID_SECRET_FILE"),
    ({"DEID_SECRET": ""}, "no pseudonymisation secret"),
    ({"DEID_SECRET_FILE": "/nonexistent/deid_secret"}, "cannot read the file DEID_SECRET_FILE"),
    ({"DEID_ENV": "production", "DEID_SECRET": "short"}, "needs 32 at least"),
])
def test_deid_without_a_usable_key_exits_2_with_one_line_and_writes_nothing(
        tree, tmp_path, capsys, monkeypatch, env, message):
    args = ["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work")]

    assert message in usage_error(args, capsys, monkeypatch, **env)
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_in_its_own_process_too(tree, tmp_path):
    done = run(["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work")])

    assert done.returncode == EXIT_USAGE and done.stdout == ""
    assert done.stderr == ("deid-pipeline: error: no pseudonymisation secret: set DEID_SECRET "
                           "or DEID_SECRET_FILE\n")


def test_an_empty_key_file_is_no_key(tmp_path):
    (tmp_path / "key").write_text("\n")
    with pytest.raises(MissingSecretError, match="no pseudonymisation secret"):
        Pseudonymizer.from_environment({"DEID_SECRET_FILE": str(tmp_path / "key")})


def test_production_takes_a_long_key_and_refuses_a_short_one():
    long_key = "k" * MIN_PRODUCTION_SECRET_BYTES
    assert Pseudonymizer.from_environment({"DEID_ENV": "production", "DEID_SECRET": long_key})
    assert Pseudonymizer.from_environment({"DEID_SECRET": "short"})  # outside production
    with pytest.raises(MissingSecretError) as refused:
        Pseudonymizer.from_environment({"DEID_ENV": " Production ", "DEID_SECRET": long_key[1:]})
    assert long_key[1:] not in str(refused.value)


def test_the_code_location_refuses_to_load_in_production_without_a_key(monkeypatch):
    from deid_pipeline.resources import PseudonymKey

    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    PseudonymKey()  # outside production a key is needed only when a step uses it
    monkeypatch.setenv("DEID_ENV", "production")
    with pytest.raises(MissingSecretError, match="no pseudonymisation secret"):
        PseudonymKey()  # what definitions.py builds at load
    monkeypatch.setenv("DEID_SECRET", SECRET)
    PseudonymKey()


def test_the_demo_makes_no_key_in_production(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))

    error = usage_error(["demo", "--data-root", str(tmp_path / "data"), "--patients", "1"],
                        capsys, monkeypatch, DEID_ENV="production")

    assert "no pseudonymisation secret" in error
    assert not (tmp_path / "home" / "deid_secret").exists()
    assert not (tmp_path / "data" / "incoming").exists()


def test_the_demo_keeps_its_own_key_owner_only_outside_production(tmp_path, monkeypatch):
    from deid_pipeline.demo import ensure_demo_secret

    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    ensure_demo_secret(tmp_path)
    key_file = Path(os.environ["DEID_SECRET_FILE"])

    assert key_file == tmp_path / "deid_secret"
    assert stat.S_IMODE(key_file.stat().st_mode) == OWNER_ONLY_FILE
    assert len(Pseudonymizer.from_environment()._secret) == 64


@pytest.mark.parametrize("from_file", [False, True], ids=["DEID_SECRET", "DEID_SECRET_FILE"])
def test_the_key_shows_up_in_no_output_mapping_audit_quarantine_or_terminal(tree, tmp_path,
                                                                             from_file):
    if from_file:
        (tmp_path / "key").write_text(SECRET + "\n")
        env = {"DEID_SECRET_FILE": str(tmp_path / "key")}
    else:
        env = {"DEID_SECRET": SECRET}
    done = run(["deid", str(tree), str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                "--no-pixels", "--jobs", "2"], DEID_ENV="production", **env)

    assert done.returncode == EXIT_QUARANTINE, done.stderr
    forms = [SECRET.encode(), SECRET.encode().hex().encode(), SECRET.upper().encode()]
    written = [p for root in (tmp_path / "out", tmp_path / "work") for p in root.rglob("*")
               if p.is_file()]
    assert len(written) >= 10  # four outputs, mappings, audit, tables, quarantine
    for path in written:
        data = path.read_bytes()
        assert not any(form in data for form in forms), path.name
    assert not any(form.decode() in done.stdout + done.stderr for form in forms)


def test_work_is_owner_only_even_under_a_loose_umask_and_an_open_folder(tree, tmp_path):
    work = tmp_path / "work"
    (work / "quarantine").mkdir(parents=True, mode=0o777)
    os.chmod(work, 0o777)
    os.chmod(work / "quarantine", 0o777)

    done = run(["deid", str(tree), str(tmp_path / "out"), "--work", str(work), "--no-pixels",
                "--jobs", "1"], umask=0, DEID_SECRET=SECRET)

    assert done.returncode == EXIT_QUARANTINE, done.stderr
    folders = [work, *[p for p in work.rglob("*") if p.is_dir()]]
    files = [p for p in work.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"uid_mapping.csv", "patid_mapping.csv", "audit.parquet"}
    assert any(p.parent.name == "quarantine" for p in files)
    for folder in folders:
        assert stat.S_IMODE(folder.stat().st_mode) == OWNER_ONLY_DIR, folder.name
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == OWNER_ONLY_FILE, path.name


@pytest.mark.parametrize("layout", ["work inside output", "work through a link into output",
                                    "output inside work", "work is output"])
def test_work_and_output_must_not_nest_even_through_a_link(tree, tmp_path, capsys, monkeypatch,
                                                           layout):
    out = tmp_path / "out"
    work = {"work inside output": out / "work",
            "work through a link into output": tmp_path / "link",
            "output inside work": tmp_path / "work", "work is output": out}[layout]
    if layout == "work through a link into output":
        (out / "private").mkdir(parents=True)
        work.symlink_to(out / "private", target_is_directory=True)
    dst = tmp_path / "work" / "out" if layout == "output inside work" else out

    error = usage_error(["deid", str(tree), str(dst), "--work", str(work)], capsys, monkeypatch,
                        DEID_SECRET=SECRET)

    assert "must not be inside" in error
    assert not list(tmp_path.rglob("*.csv")) and not list(tmp_path.rglob("*.parquet"))
