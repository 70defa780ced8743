"""Re-running a failed partition, end to end, the way an operator does it: `dagster-webserver`
and `dagster-daemon` on loopback with a temporary instance, a backfill over three days of which
one fails, the input repaired, and the backfill re-executed from failure through GraphQL."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dagster import AssetRecordsFilter, DagsterInstance

from deid_pipeline.definitions import defs
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write
from deid_pipeline_tests.s3_server import free_port

ROOT = Path(__file__).resolve().parents[1]
DAYS = ["2026-01-13", "2026-01-14", "2026-01-15"]
BROKEN_DAY = "2026-01-14"
# Four runs of the whole graph (OCR, expectation suites and a dbt build each) on two cores.
WAIT_S = 540
REPOSITORY = {"repositoryName": "__repository__", "repositoryLocationName": "deid_pipeline"}

# The instance of the test: runs wait in the queue for the daemon (as in production), and run
# retries are off so that the failed partition stays failed until it is re-executed.
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
run_retries:
  enabled: false
"""

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

REEXECUTE_BACKFILL = """
mutation Reexecute($params: ReexecutionParams) {
  reexecutePartitionBackfill(reexecutionParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

BACKFILL_STATE = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      runs { id status tags { key value } }
    }
    ... on Error { message }
  }
}"""

TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert "errors" not in body, body["errors"]
    return body["data"]


def write_drop(folder: Path, day: str) -> None:
    """One small CT file: every stage runs on it, quickly."""
    ds = ct_with_nested_and_private()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.{day[-2:]}.1"
    write(ds, folder / "DOE_JANE" / "1.dcm")


class Deployment:
    """dagster-webserver and dagster-daemon on one temporary instance, each in its own process
    group, stopped by group (`dagster dev` started from a script ignores SIGTERM)."""

    def __init__(self, home: Path, data_root: Path):
        # Create the SQLite storage once, here: two processes creating it at the same moment
        # race on its schema version.
        DagsterInstance.from_config(str(home)).dispose()
        self.port = free_port()
        self.bin_dir = Path(sys.executable).parent
        self.env = {"DAGSTER_HOME": str(home), "PATH": f"{self.bin_dir}:/usr/bin:/bin",
                    "DEID_DATA_ROOT": str(data_root), "DEID_SECRET": "backfill-test-secret",
                    # One process per run rather than per step: what is under test is the
                    # orchestration, and this keeps the test within two minutes.
                    "DEID_EXECUTOR": "in_process"}
        self.logs: dict[str, Path] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.home = home

    def start(self, name: str, *args: str) -> None:
        self.logs[name] = self.home / f"{name}.log"
        self.processes[name] = subprocess.Popen(
            [str(self.bin_dir / name), *args, "-w", "workspace.yaml"], cwd=ROOT, env=self.env,
            start_new_session=True, stdout=self.logs[name].open("w"), stderr=subprocess.STDOUT)

    def start_webserver(self) -> None:
        self.start("dagster-webserver", "-h", "127.0.0.1", "-p", str(self.port))

    def start_daemon(self) -> None:
        self.start("dagster-daemon", "run")

    def log_tails(self) -> str:
        return "\n".join(f"--- {name}\n{path.read_text()[-3000:]}"
                         for name, path in self.logs.items())

    def wait_for(self, what: str, check, deadline: float):
        """Poll `check()` until it returns something truthy; fail past the deadline."""
        while True:
            for name, proc in self.processes.items():
                assert proc.poll() is None, f"{name} exited\n{self.log_tails()}"
            try:
                value = check()
            except OSError:  # the webserver is not listening yet
                value = None
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n{self.log_tails()}"
            time.sleep(1)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.port, query, variables)

    def finished_backfill_runs(self, backfill_id: str, runs: int, completed: bool = True):
        """The backfill's runs once it has launched `runs` runs and all have ended (and, with
        `completed`, the daemon has marked the backfill done, which re-execution requires)."""
        state = self.graphql(BACKFILL_STATE, {"id": backfill_id})["partitionBackfillOrError"]
        assert state["__typename"] == "PartitionBackfill", state
        done = (len(state["runs"]) == runs
                and all(run["status"] in TERMINAL_RUN_STATUSES for run in state["runs"])
                and (state["status"] != "REQUESTED" or not completed))
        return state["runs"] if done else None

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def partition_of(run: dict) -> str:
    return next(tag["value"] for tag in run["tags"] if tag["key"] == "dagster/partition")


def test_backfill_reexecuted_from_failure_reruns_only_the_repaired_partition(tmp_path):
    home, data_root = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    for day in DAYS:
        write_drop(data_root / "incoming" / day, day)
    # The broken day: a file where its drop folder should be, so its ingest cannot read it.
    broken = data_root / "incoming" / BROKEN_DAY
    staged_aside = tmp_path / "repaired_drop"
    broken.rename(staged_aside)
    broken.write_bytes(b"a zip archive the site should have unpacked")

    deployment = Deployment(home, data_root)
    deadline = time.monotonic() + WAIT_S
    try:
        deployment.start_webserver()
        deployment.wait_for("the webserver to load the code location",
                            lambda: deployment.graphql("{ assetNodes { id } }")["assetNodes"],
                            deadline)

        launched = deployment.graphql(LAUNCH_BACKFILL, {"params": {
            "selector": {"partitionSetName": "deidentify_day_partition_set",
                         "repositorySelector": REPOSITORY},
            "partitionNames": DAYS,
        }})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        # Started after the launch, the daemon takes the backfill up on its first pass rather
        # than up to 30 s later.
        deployment.start_daemon()
        first_runs = deployment.wait_for(
            "the backfill's three runs to end",
            lambda: deployment.finished_backfill_runs(backfill_id, runs=3), deadline)
        status_by_day = {partition_of(run): run["status"] for run in first_runs}
        assert status_by_day == {"2026-01-13": "SUCCESS", BROKEN_DAY: "FAILURE",
                                 "2026-01-15": "SUCCESS"}, deployment.log_tails()

        broken.unlink()
        staged_aside.rename(broken)
        retried = deployment.graphql(REEXECUTE_BACKFILL, {"params": {
            "parentRunId": backfill_id, "strategy": "FROM_FAILURE"}})["reexecutePartitionBackfill"]
        assert retried["__typename"] == "LaunchBackfillSuccess", retried
        retry_runs = deployment.wait_for(
            "the re-execution to end",
            lambda: deployment.finished_backfill_runs(retried["backfillId"], runs=1,
                                                      completed=False), deadline)
    finally:
        deployment.stop()

    (retry_run,) = retry_runs
    failed_run_id = next(run["id"] for run in first_runs if partition_of(run) == BROKEN_DAY)
    retry_tags = {tag["key"]: tag["value"] for tag in retry_run["tags"]}
    assert retry_run["status"] == "SUCCESS", deployment.log_tails()
    assert retry_tags["dagster/partition"] == BROKEN_DAY
    assert retry_tags["dagster/parent_run_id"] == failed_run_id

    # Every asset of every day is materialized, each exactly once: the healthy days were not
    # computed again, the repaired day only by its re-execution.
    with DagsterInstance.from_config(str(home)) as instance:
        for spec in defs.resolve_all_asset_specs():
            if spec.partitions_def is None:
                # The dbt marts span every day: each run rebuilt them, the repaired day's last.
                latest = instance.fetch_materializations(spec.key, limit=1).records
                assert latest and latest[0].run_id == retry_run["id"], spec.key
                continue
            for day in DAYS:
                records = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=spec.key, asset_partitions=[day]),
                    limit=10).records
                assert len(records) == 1, (spec.key, day, len(records))
                expected_run = retry_run["id"] if day == BROKEN_DAY else next(
                    run["id"] for run in first_runs if partition_of(run) == day)
                assert records[0].run_id == expected_run
