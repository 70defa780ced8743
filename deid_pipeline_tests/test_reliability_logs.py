"""No identifying value of the synthetic corpus reaches a log: the Dagster event log (messages
and metadata of every event), the captured compute logs, the run's own stdout and stderr, and
what `deid-pipeline deid` prints. The values come from the corpus' answer key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from dagster._serdes import serialize_value

from deid_pipeline.core.synth import generate_corpus
from deid_pipeline.core.validate.midib import load_answer_key

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-01-15"
SECRET = "logs test secret, not for production"
PATIENTS = 1  # 16 files through every stage, OCR included: the smallest corpus with them all
MIN_PART = 3  # shorter name parts ("R", "LI") occur in any text


def identifying_values(answer_key: Path) -> set[str]:
    """Upper-case: every value the answer key says must go (and each part of a person name),
    original Patient IDs, UIDs and dates, and each line of burned-in PHI."""
    values = set()
    for check in load_answer_key(answer_key):
        if check.action == "text_removed":
            text = check.action_text or check.value
            values |= {text, text.replace("^", " ")}
            if "^" in text:
                values |= {part for part in re.split(r"[\^\\ ]+", text) if len(part) >= MIN_PART}
        elif check.action in ("patid_consistent", "uid_changed", "date_shifted"):
            values.add(check.value)
        elif check.action == "pixels_hidden":
            values.add(json.loads(check.action_text)["text"])
    return {value.strip().upper() for value in values if len(value.strip()) >= MIN_PART}


def assert_clean(values: set[str], text: str, where: str) -> None:
    """No value in text as a whole word. A failure counts them and does not quote them: the
    corpus is synthetic, but the habit is the point."""
    text = text.upper()
    found = [value for value in values
             if re.search(rf"(?<![A-Z0-9]){re.escape(value)}(?![A-Z0-9])", text)]
    assert not found, f"{len(found)} identifying value(s) in {where}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    summary = generate_corpus(root / "incoming" / DAY, patients=PATIENTS, seed=0)
    values = identifying_values(summary.answer_key)
    assert len(values) > 100
    # The search finds what is there: the drop's own paths name the patients.
    paths = "\n".join(p.relative_to(root).as_posix() for p in root.rglob("*.dcm"))
    with pytest.raises(AssertionError):
        assert_clean(values, paths, "the drop's paths")
    return root, summary, values


def test_the_job_logs_no_identifying_value(corpus, tmp_path, capfd, monkeypatch):
    """The whole graph of a partition, as the demo runs it: every asset, its checks, the marts."""
    from deid_pipeline.assets.dbt_marts import dbt_resource
    from deid_pipeline.definitions import defs
    from deid_pipeline.resources import DataLake, PseudonymKey

    root, summary, values = corpus
    monkeypatch.setenv("DEID_SECRET", SECRET)
    monkeypatch.delenv("DEID_SECRET_FILE", raising=False)
    monkeypatch.setenv("DEID_DBT_DATABASE", str(tmp_path / "marts.duckdb"))
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = materialize(
            [*defs.assets, *defs.asset_checks], partition_key=DAY, instance=instance,
            resources={"lake": DataLake(root=str(root)), "pseudonym_key": PseudonymKey(),
                       "dbt": dbt_resource()},
            run_config={"loggers": {"console": {"config": {"log_level": "DEBUG"}}}})
        events = instance.all_logs(result.run_id)

    assert result.success
    assert {"midib_validation_report", "pixel_phi_metrics", "dbt_marts"} <= {
        node.name for node in result.job_def.nodes}
    checks = result.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)
    event_log = "\n".join(serialize_value(event) for event in events)
    assert "ASSET_MATERIALIZATION" in event_log and len(events) > 30
    assert_clean(values, event_log, "the event log")
    materialized = [event.dagster_event.event_specific_data.materialization for event in events
                    if event.dagster_event and event.dagster_event.is_step_materialization]
    metadata = "\n".join(str(m.metadata) for m in materialized)
    assert "quarantined" in metadata
    assert_clean(values, metadata, "materialization metadata")
    compute_logs = [p for p in (tmp_path / "home" / "storage").rglob("*")
                    if p.suffix in (".out", ".err")]
    assert compute_logs
    assert_clean(values, "\n".join(p.read_text(errors="replace") for p in compute_logs),
                 "the compute logs")
    stored = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]  # the SQLite event log
    assert_clean(values, "\n".join(p.read_bytes().decode("latin-1") for p in stored),
                 "the instance's storage")
    terminal = capfd.readouterr()
    assert "STEP_SUCCESS" in terminal.err
    assert_clean(values, terminal.out + terminal.err, "the run's stdout and stderr")


def test_the_command_prints_no_identifying_value(corpus, tmp_path):
    root, summary, values = corpus
    env = {**os.environ, "DEID_SECRET": SECRET, "DEID_DEBUG": ""}
    env.pop("DEID_SECRET_FILE", None)

    done = subprocess.run(
        [sys.executable, "-m", "deid_pipeline.cli", "deid", str(summary.root),
         str(tmp_path / "out"), "--work", str(tmp_path / "work"), "--jobs", "2"],
        env=env, cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=900)

    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{summary.files + summary.slides} de-identified" in done.stdout
    assert_clean(values, done.stdout + done.stderr, "what the command printed")
