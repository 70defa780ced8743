"""The main job on embedded defaults: a synthetic drop for one day, materialized end to end (every
asset, its checks and the dbt marts) in a project-local, SQLite-backed Dagster instance that
`dagster dev` then shows."""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterInstance, materialize

from deid_pipeline.core.pseudonyms import MissingSecretError, is_production
from deid_pipeline.core.synth import generate_corpus
from deid_pipeline.assets.dbt_marts import dbt_resource
from deid_pipeline.definitions import defs
from deid_pipeline.resources import DataLake, PseudonymKey

DAGSTER_HOME_ENV = "DAGSTER_HOME"
# The local instance settings (run queue, pools, run retries, no telemetry) of a source checkout.
LOCAL_INSTANCE_TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "dagster.local.yaml"
SECRET_ENVS = ("DEID_SECRET", "DEID_SECRET_FILE")


@dataclass(frozen=True)
class DemoReport:
    partition: str
    succeeded: bool
    files: int
    data_root: Path
    dagster_home: Path
    tables: tuple[Path, ...]

    def __str__(self) -> str:
        state = "materialized" if self.succeeded else "FAILED"
        lines = [
            f"partition {self.partition}: {state} ({self.files} synthetic DICOM files)",
            f"  drop folder : {self.data_root / 'incoming' / self.partition}",
            f"  output      : {self.data_root / 'encoded' / self.partition}  (final DICOM)",
            f"  slides      : {self.data_root / 'deidentified_slides' / self.partition}",
            f"  work        : {self.data_root / 'work' / self.partition}  (mappings, audit, "
            "quarantine, MIDI-B report: owner-only)",
            f"  reports     : {self.data_root / 'reports' / self.partition}  (pixel metrics)",
            *(f"  table       : {path}" for path in self.tables),
            f"  marts       : {os.environ.get('DEID_DBT_DATABASE') or 'dbt/target/deid_pipeline.duckdb'}"
            "  (dbt)",
            f"  Dagster home: {self.dagster_home}  (UI: make ui, then http://127.0.0.1:3000)",
        ]
        return "\n".join(lines)


def project_dagster_home() -> Path:
    """`$DAGSTER_HOME` if set, else `.dagster_home/` in the working directory, created on use;
    Dagster then keeps runs, events and schedules in SQLite files there."""
    home = Path(os.environ.get(DAGSTER_HOME_ENV) or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists() and LOCAL_INSTANCE_TEMPLATE.exists():
        shutil.copyfile(LOCAL_INSTANCE_TEMPLATE, instance_yaml)
    os.environ[DAGSTER_HOME_ENV] = str(home)
    return home


def ensure_demo_secret(home: Path) -> None:
    """Without a configured key the demo makes one in its local state (owner-only), so that
    re-runs give the same pseudonyms; a real deployment sets DEID_SECRET or DEID_SECRET_FILE.
    This is the only key the project ever makes, and never in production (DEID_ENV)."""
    if any(os.environ.get(name) for name in SECRET_ENVS):
        return
    if is_production():
        raise MissingSecretError(
            f"no pseudonymisation secret: the demo makes its own key only outside production; "
            f"set {' or '.join(SECRET_ENVS)}")
    key_file = home / "deid_secret"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_hex(32))
    os.environ["DEID_SECRET_FILE"] = str(key_file)


def run_demo(data_root: Path, partition: str, patients: int, seed: int) -> DemoReport:
    home = project_dagster_home()
    ensure_demo_secret(home)
    lake = DataLake(root=str(Path(data_root).resolve()))
    corpus = generate_corpus(lake.incoming(partition), patients=patients, seed=seed)
    with DagsterInstance.get() as instance:
        result = materialize([*defs.assets, *defs.asset_checks], partition_key=partition,
                             instance=instance,
                             run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
                             resources={"lake": lake, "pseudonym_key": PseudonymKey(),
                                        "dbt": dbt_resource()},
                             raise_on_error=False)
    # Every table written for the day, whichever asset wrote it (some write two).
    tables_root = lake.table_path("any", partition).parents[1]
    return DemoReport(partition=partition, succeeded=result.success, files=corpus.files,
                      data_root=Path(lake.root), dagster_home=home,
                      tables=tuple(sorted(tables_root.glob(f"*/{partition}.parquet"))))
