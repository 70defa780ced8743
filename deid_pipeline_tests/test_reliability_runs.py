"""Runs that are killed or repeated: a run killed midway leaves no partial output in sight, and a
re-run gives, byte for byte, what one uninterrupted run gives; so do two runs with one key."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deid_pipeline.cli import EXIT_OK, main
from deid_pipeline_tests.clones import write_clones
from deid_pipeline_tests.dicom_factory import write_two_patient_tree

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
SECRET = "reliability test secret, not for production"
# Enough files that a run takes seconds, so the kill lands in the middle of it.
FILES = 300
KILL_AFTER_OUTPUTS = 20
MAPPINGS = ("uid_mapping.csv", "patid_mapping.csv")
TEMPORARY = re.compile(r"\..+\.tmp")  # core.atomic's hidden temporaries


def command(src: Path, dst: Path, work: Path) -> list[str]:
    return [sys.executable, "-m", "deid_pipeline.cli", "deid", str(src), str(dst), "--work",
            str(work), "--no-pixels", "--jobs", "2"]


def environment() -> dict[str, str]:
    env = {**os.environ, "DEID_SECRET": SECRET}
    env.pop("DEID_SECRET_FILE", None)
    return env


def tree_bytes(root: Path, hidden: bool = True) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and (hidden or not is_hidden(p.relative_to(root)))}


def is_hidden(relpath: Path) -> bool:
    return any(part.startswith(".") for part in relpath.parts)


def visible_outputs(dst: Path) -> int:
    return sum(1 for p in dst.rglob("*.dcm") if not p.name.startswith("."))


def kill_midway(src: Path, dst: Path, work: Path) -> None:
    """Start the command in its own session and SIGKILL the whole session (command and workers,
    as the OOM killer or a lost node would) once some outputs are visible."""
    with subprocess.Popen(command(src, dst, work), env=environment(), cwd=REPOSITORY_ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True) as process:
        deadline = time.monotonic() + 300
        while visible_outputs(dst) < KILL_AFTER_OUTPUTS and time.monotonic() < deadline:
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    src = root / "in"
    write_clones(src, FILES)
    done = subprocess.run(command(src, root / "out", root / "work"), env=environment(),
                          cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == EXIT_OK, done.stderr
    return src, root / "out", root / "work"


def test_a_killed_run_leaves_no_partial_file_and_a_rerun_gives_the_uninterrupted_bytes(
        uninterrupted, tmp_path):
    src, reference_out, reference_work = uninterrupted
    dst, work = tmp_path / "out", tmp_path / "work"
    reference = tree_bytes(reference_out)

    kill_midway(src, dst, work)

    visible = tree_bytes(dst, hidden=False)
    assert KILL_AFTER_OUTPUTS <= len(visible) < FILES
    # Every file in sight is whole: the very bytes the uninterrupted run wrote there.
    assert all(reference.get(relpath) == data for relpath, data in visible.items())
    leftovers = set(tree_bytes(dst)) - set(visible)
    assert all(TEMPORARY.fullmatch(Path(relpath).name) for relpath in leftovers)
    for name, data in tree_bytes(work, hidden=False).items():
        if name in MAPPINGS:
            assert data == (reference_work / name).read_bytes()

    done = subprocess.run(command(src, dst, work), env=environment(), cwd=REPOSITORY_ROOT,
                          capture_output=True, text=True, timeout=600)

    assert done.returncode == EXIT_OK, done.stderr
    assert tree_bytes(dst) == reference  # hidden files included: the leftovers are gone
    for name in MAPPINGS:
        assert (work / name).read_bytes() == (reference_work / name).read_bytes()


def deid(src: Path, dst: Path, work: Path, jobs: str) -> None:
    assert main(["deid", str(src), str(dst), "--work", str(work), "--no-pixels",
                 "--jobs", jobs]) == EXIT_OK


def test_two_runs_with_one_key_give_the_same_bytes_and_another_key_does_not(tmp_path,
                                                                            monkeypatch):
    src = tmp_path / "in"
    write_two_patient_tree(src)
    monkeypatch.delenv("DEID_SECRET_FILE", raising=False)
    monkeypatch.setenv("DEID_SECRET", SECRET)
    deid(src, tmp_path / "out1", tmp_path / "work1", "1")
    deid(src, tmp_path / "out2", tmp_path / "work2", "2")
    monkeypatch.setenv("DEID_SECRET", SECRET + " rotated")
    deid(src, tmp_path / "out3", tmp_path / "work3", "1")

    first = tree_bytes(tmp_path / "out1")
    assert len(first) == 4
    assert tree_bytes(tmp_path / "out2") == first
    for name in MAPPINGS:
        assert (tmp_path / "work2" / name).read_bytes() == (tmp_path / "work1" / name).read_bytes()
    other = tree_bytes(tmp_path / "out3")
    assert len(other) == 4 and not set(other) & set(first)
    assert (tmp_path / "work3" / MAPPINGS[0]).read_bytes() != (
        tmp_path / "work1" / MAPPINGS[0]).read_bytes()
