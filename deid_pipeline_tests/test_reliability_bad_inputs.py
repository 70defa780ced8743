"""`deid-pipeline deid` over a drop of bad inputs (deid_pipeline_tests/bad_inputs.py), in its own
process as a user runs it: each file is de-identified with no planted value left in any output
byte or path, or quarantined with a reason naming its fault; the batch always completes, exits 3
and prints no traceback."""

from __future__ import annotations

import os
import re
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from deid_pipeline.core.quarantine import read_reason
from deid_pipeline_tests.bad_inputs import CASES, DEIDENTIFIED, build_bad_inputs

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
SECRET = "bad inputs test secret, not for production"
# Should the pipeline trust a decompression bomb's declared size, it fails to allocate rather
# than take the test machine's memory.
ADDRESS_SPACE_LIMIT = 12 << 30
EXIT_QUARANTINE = 3

def limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def run_deid(src: Path, dst: Path, work: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEID_SECRET": SECRET}
    env.pop("DEID_SECRET_FILE", None)
    env.pop("DEID_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "deid_pipeline.cli", "deid", str(src), str(dst), "--work",
         str(work), *options], env=env, cwd=REPOSITORY_ROOT, capture_output=True, text=True,
        timeout=600, preexec_fn=limit_address_space)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root as it lies (links not followed): mode, size, time, bytes."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            content = (path.read_bytes() if stat.S_ISREG(info.st_mode)
                       and os.access(path, os.R_OK) else None)
            entries[str(path.relative_to(root))] = (info.st_mode, info.st_size,
                                                    info.st_mtime_ns, content)
    return entries


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    cases = build_bad_inputs(root / "drop", root / "elsewhere")
    return root, {planted.case.name: planted for planted in cases}


def outcomes_of(work: Path) -> dict[str, str]:
    """Input path -> DEIDENTIFIED or its quarantine reason, from the work folder's records."""
    outcomes = {source: DEIDENTIFIED
                for source in pd.read_parquet(work / "files.parquet")["source"]}
    for reason_file in (work / "quarantine").glob("*.reason.txt"):
        relpath, reason = read_reason(reason_file)
        assert relpath not in outcomes, f"{relpath!r} both written and quarantined"
        outcomes[relpath] = reason
    return outcomes


def run_over(drop, name: str, *options: str) -> dict:
    root, cases = drop
    before = snapshot(root / "drop")
    done = run_deid(root / "drop", root / f"{name}_out", root / f"{name}_work", *options)
    return {"done": done, "dst": root / f"{name}_out", "work": root / f"{name}_work",
            "outcomes": outcomes_of(root / f"{name}_work"), "cases": cases,
            "inputs_unchanged": snapshot(root / "drop") == before}


@pytest.fixture(scope="module")
def tags_run(drop):
    return run_over(drop, "tags", "--no-pixels", "--jobs", "2")


@pytest.fixture(scope="module")
def pixels_run(drop):
    return run_over(drop, "pixels", "--jobs", "1")


@pytest.fixture(params=["tags", "pixels"])
def run(request):
    return request.getfixturevalue(f"{request.param}_run"), request.param == "pixels"


def test_the_drop_holds_at_least_30_cases(drop):
    _, cases = drop
    assert len(cases) >= 30
    assert sum(len(planted.case.expected) for planted in cases.values()) >= 35


def test_the_batch_completes_exits_3_and_prints_nothing_but_its_summary(run):
    result, _ = run
    done = result["done"]

    assert done.returncode == EXIT_QUARANTINE, done.stderr
    assert done.stderr == ""
    assert re.fullmatch(r"deid: \d+ de-identified, \d+ quarantined in .*\n", done.stdout)


def test_every_input_is_accounted_for_and_none_twice(run):
    result, pixels = run
    expected = {relpath for planted in result["cases"].values()
                for relpath in planted.case.expectation(pixels)}

    assert set(result["outcomes"]) == expected


def test_inputs_are_left_as_they_were(run):
    assert run[0]["inputs_unchanged"]


def searchable(path: Path) -> tuple[str, bytes]:
    """An output's values as pydicom decodes them (any character set, any depth, file meta
    included) with its raw bytes read as Latin-1, upper-cased; and the raw bytes."""
    raw = path.read_bytes()
    ds = pydicom.dcmread(path)
    values = [str(elem.value) for elem in [*ds.file_meta.iterall(), *ds.iterall()]
              if elem.tag != 0x7FE00010]
    return "\n".join([raw.decode("latin-1"), *values]).upper(), raw


def found(value: str, text: str, raw: bytes) -> bool:
    if value.isascii():
        return re.search(rf"(?<![A-Z0-9]){re.escape(value.upper())}(?![A-Z0-9])", text) is not None
    encoded = set()
    for codec in ("utf-8", "gb18030", "iso2022_jp", "latin-1"):
        try:
            encoded.add(value.encode(codec))
        except UnicodeEncodeError:
            continue
    return value.upper() in text or any(form in raw for form in encoded)


def outputs_of(result: dict) -> dict[str, str]:
    files = pd.read_parquet(result["work"] / "files.parquet")
    return dict(zip(files["source"], files["output"], strict=True))


def check_case(result: dict, name: str, pixels: bool) -> None:
    """The case's files ended as expected, and no value it planted is in its outputs' bytes
    or paths."""
    planted = result["cases"].get(name)
    if planted is None:
        pytest.skip("this machine cannot hold the case (file system or user)")
    output_of = outputs_of(result)
    for relpath, expected in planted.case.expectation(pixels).items():
        got = result["outcomes"].get(relpath)
        if expected == DEIDENTIFIED:
            assert got == DEIDENTIFIED, f"{relpath!r}: {got}"
            output = output_of[relpath]
            text, raw = searchable(result["dst"] / output)
            leaked = [value for value in planted.planted
                      if found(value, f"{text}\n{output.upper()}", raw)]
            assert not leaked, f"{relpath!r}: {len(leaked)} planted value(s) left"
        else:
            assert got != DEIDENTIFIED and expected in got, f"{relpath!r}: {got}"


CASE_NAMES = [case.name for case in CASES]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_case_without_the_pixel_stage(tags_run, name):
    check_case(tags_run, name, pixels=False)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_case_through_the_pixel_stage(pixels_run, name):
    check_case(pixels_run, name, pixels=True)


def test_the_output_holds_the_recorded_files_and_nothing_else(run):
    result, _ = run
    visible = {p.relative_to(result["dst"]).as_posix() for p in result["dst"].rglob("*")
               if p.is_file()}

    assert visible == set(outputs_of(result).values())
    assert len(visible) >= 15


def test_the_terminal_shows_no_planted_value_and_no_input_name(run):
    result, _ = run
    printed = (result["done"].stdout + result["done"].stderr).upper()
    for planted in result["cases"].values():
        for value in planted.planted:
            assert value.upper() not in printed, planted.case.name
        for relpath in planted.case.expected:
            assert relpath.upper() not in printed


def test_quarantine_is_owner_only_one_line_per_reason_and_never_follows_a_link(tags_run, drop):
    root, _ = drop
    quarantine = tags_run["work"] / "quarantine"
    outside = (root / "elsewhere" / "elsewhere.dcm").read_bytes()

    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o700
    for path in quarantine.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        if path.name.endswith(".reason.txt"):
            assert path.read_text().count("\n") == 1
        else:
            assert path.read_bytes() != outside  # the link's target stays where it is
