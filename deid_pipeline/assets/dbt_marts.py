"""The dbt marts (dbt/): per-day summary, MIDI-B pass rate per check and modality, PHI findings
per modality and reason, the nightly trend, and the staging views under them.

The marts summarize every day at once, so they are not partitioned: each partition's run
rebuilds them once its own stages are done. Each dbt source names the asset that writes it
(`meta.dagster.asset_key` in dbt/models/staging/sources.yml), which puts the marts downstream of
the pipeline in the lineage; dbt's tests become the assets' checks.
"""

import fcntl
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetSpec
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from deid_pipeline.resources import DataLake

PROJECT_DIR_ENV = "DEID_DBT_PROJECT_DIR"
# The source checkout's dbt/ folder; an installed package (a container image) names its copy.
DEFAULT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
# The tables/<table>/ folders the dbt sources read; the audit comes from work/<day>/.
LAKE_TABLES = ("incoming_dicom", "dicom_metadata", "deidentified_metadata",
               "pixel_phi_findings", "midib_results")
# What dbt generates or installs beside the project files, never an input of a parse.
GENERATED_FOLDERS = frozenset({"target", "logs", "dbt_packages"})
# One dbt build at a time across runs: DuckDB lets one process write the database, and dbt
# writes the project's target/ folder (where the database also lies by default). The pool's
# limit is the instance's (`concurrency.pools.default_limit`, 1 in infra/dagster.local.yaml); an
# instance without one still builds one at a time on a machine: a second run's build waits for
# BUILD_LOCK, a lock file in target/, instead of failing.
DBT_POOL = "dbt"
BUILD_LOCK = ".build.lock"
OWNERS = ["team:imaging-data"]


def dbt_executable() -> str:
    """dbt beside this interpreter (the virtual environment's, on PATH or not), else on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def parse_if_stale(project: DbtProject) -> Path:
    """The project's manifest.json, parsed again when missing or older than a project file, so
    that a fresh clone and an edited model both load. It is parsed into a temporary folder and
    renamed into place: a process loading the code location meanwhile reads a whole manifest."""
    manifest = project.manifest_path
    inputs = [path for path in project.project_dir.rglob("*")
              if path.is_file() and path.suffix in (".sql", ".yml", ".yaml")
              and path.relative_to(project.project_dir).parts[0] not in GENERATED_FOLDERS]
    newest = max(path.stat().st_mtime for path in inputs)
    if manifest.exists() and manifest.stat().st_mtime >= newest:
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=manifest.parent, prefix=".parse-") as tmp:
        done = subprocess.run(
            [dbt_executable(), "parse", "--quiet", "--project-dir", str(project.project_dir),
             "--profiles-dir", str(project.profiles_dir), "--target-path", tmp,
             "--log-path", tmp],
            capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"dbt parse failed in {project.project_dir}:\n"
                               f"{(done.stdout + done.stderr)[-3000:]}")
        os.replace(Path(tmp) / "manifest.json", manifest)
    return manifest


class LakeDbtTranslator(DagsterDbtTranslator):
    """dbt models as assets of the `reports` group, owned like the pipeline's own."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str,
                       project: DbtProject | None) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        return spec.replace_attributes(group_name="reports", owners=OWNERS)


def data_root_of(lake: DataLake) -> Path:
    """The local folder that holds `tables/` and `work/` (both in the private area)."""
    return lake.table_path(LAKE_TABLES[0], "day").parents[2]


def stage_sources(lake: DataLake) -> None:
    """Bring every day of what dbt reads onto local disk (a no-op on a local root)."""
    from deid_pipeline.core.deid.batch import WorkPaths

    for table in LAKE_TABLES:
        lake.stage(lake.table_path(table, "day").parent)
    for day in lake.incoming_days():
        lake.stage(WorkPaths(lake.work(day)).audit)


dbt_project = DbtProject(project_dir=os.environ.get(PROJECT_DIR_ENV) or DEFAULT_PROJECT_DIR)


@dbt_assets(manifest=parse_if_stale(dbt_project), project=dbt_project,
            dagster_dbt_translator=LakeDbtTranslator(), pool=DBT_POOL, name="dbt_marts")
def dbt_marts(context: AssetExecutionContext, dbt: DbtCliResource,
              lake: DataLake) -> Iterator[Any]:
    stage_sources(lake)
    dbt_vars = json.dumps({"data_root": str(data_root_of(lake))})
    target = Path(dbt_project.project_dir) / "target"
    target.mkdir(exist_ok=True)
    with open(target / BUILD_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        # One target folder, reused under the lock: dagster-dbt's default makes one a run, and
        # nightly runs would pile them up in the project.
        yield from dbt.cli(["build", "--vars", dbt_vars], context=context,
                           target_path=target / "build").stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
