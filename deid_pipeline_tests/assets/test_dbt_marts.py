"""The dbt marts as Dagster assets: downstream of the stages whose tables they read, built by a
run, their manifest parsed whenever the project is newer than it."""

import fcntl
import json
import os
import shutil
import threading
from pathlib import Path

import duckdb
from dagster import AssetKey, materialize
from dagster_dbt import DbtProject

from deid_pipeline.assets.dbt_marts import (
    BUILD_LOCK,
    DEFAULT_PROJECT_DIR,
    LAKE_TABLES,
    dbt_marts,
    dbt_project,
    dbt_resource,
    parse_if_stale,
)
from deid_pipeline.definitions import defs
from deid_pipeline.resources import DataLake
from deid_pipeline_tests.s3_server import s3, s3_server  # noqa: F401 (fixtures)
from deid_pipeline_tests.test_dbt import DAY, write_day_tables

MARTS = {"mart_partition_summary", "mart_check_pass_rate", "mart_phi_findings",
         "mart_nightly_trend"}


def test_the_marts_sit_downstream_of_the_assets_that_write_their_sources():
    upstream = {dep for key in dbt_marts.keys for dep in dbt_marts.asset_deps[key]
                if dep not in dbt_marts.keys}
    pipeline = {spec.key for spec in defs.resolve_all_asset_specs()} - set(dbt_marts.keys)
    assert upstream == {AssetKey(name) for name in (
        "incoming_dicom", "dicom_metadata", "deidentified_metadata", "deidentified_dicom",
        "pixel_phi_findings", "midib_validation_report")}
    assert upstream <= pipeline
    assert {AssetKey(name) for name in MARTS} <= set(dbt_marts.keys)


def test_the_folders_staged_for_dbt_are_those_its_sources_read():
    sources = json.loads(dbt_project.manifest_path.read_text())["sources"].values()
    assert {source["name"] for source in sources} == {*LAKE_TABLES, "deid_audit"}


def test_the_manifest_is_parsed_when_missing_and_again_after_an_edit(tmp_path):
    shutil.copytree(DEFAULT_PROJECT_DIR, tmp_path / "dbt",
                    ignore=shutil.ignore_patterns("target", "logs"))
    project = DbtProject(project_dir=tmp_path / "dbt")

    manifest = parse_if_stale(project)
    parsed = manifest.stat().st_mtime_ns
    assert parse_if_stale(project).stat().st_mtime_ns == parsed  # fresh: not parsed again
    model = tmp_path / "dbt" / "models" / "marts" / "mart_nightly_trend.sql"
    os.utime(model, ns=(parsed + 10**9, parsed + 10**9))
    assert parse_if_stale(project).stat().st_mtime_ns > parsed


def test_a_run_builds_the_marts_and_reports_dbt_tests_as_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_DBT_DATABASE", str(tmp_path / "marts.duckdb"))
    lake = DataLake(root=str(tmp_path / "data"))
    write_day_tables(lake, tmp_path / "drop")

    result = materialize([dbt_marts], resources={"lake": lake, "dbt": dbt_resource()})

    assert result.success
    built = {m.asset_key.path[-1] for m in result.get_asset_materialization_events()
             for m in [m.event_specific_data.materialization]}
    assert MARTS <= built
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    with duckdb.connect(str(tmp_path / "marts.duckdb"), read_only=True) as db:
        assert db.sql("select ingest_day, files_dropped from mart_partition_summary"
                      ).fetchall() == [(DAY, 1)]
    # One target folder for every build, not one a run piling up in the project.
    target = Path(dbt_project.project_dir) / "target"
    assert (target / "build" / "run_results.json").is_file()
    assert not list(target.glob("dbt_marts-*"))


def test_on_s3_every_day_of_the_sources_is_staged_before_the_build(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_DBT_DATABASE", str(tmp_path / "marts.duckdb"))
    client = s3.client()
    for bucket in ("site-drops", "deid-outputs", "deid-work"):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket="site-drops", Key=f"acme/incoming/{DAY}/1.dcm", Body=b"")
    writer = DataLake(root="s3://deid-outputs/acme", incoming_root="s3://site-drops/acme",
                      private_root="s3://deid-work/acme", staging_dir=str(tmp_path / "writer"),
                      s3=s3.resource())
    write_day_tables(writer, tmp_path / "drop")
    # Another process (a step pod) with nothing staged yet.
    reader = writer.model_copy(update={"staging_dir": str(tmp_path / "reader")})

    result = materialize([dbt_marts], resources={"lake": reader, "dbt": dbt_resource()})

    assert result.success
    with duckdb.connect(str(tmp_path / "marts.duckdb"), read_only=True) as db:
        summary = db.sql("select files_dropped, elements_audited > 0, validation_checks "
                         "from mart_partition_summary").fetchall()
    assert summary == [(1, True, 3)]


def test_a_build_waits_while_another_run_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_DBT_DATABASE", str(tmp_path / "marts.duckdb"))
    lake = DataLake(root=str(tmp_path / "data"))
    write_day_tables(lake, tmp_path / "drop")
    results = []
    run = threading.Thread(target=lambda: results.append(
        materialize([dbt_marts], resources={"lake": lake, "dbt": dbt_resource()})))

    with open(Path(dbt_project.project_dir) / "target" / BUILD_LOCK, "a") as other_build:
        fcntl.flock(other_build, fcntl.LOCK_EX)
        run.start()
        run.join(timeout=15)
        assert run.is_alive() and not (tmp_path / "marts.duckdb").exists()
    run.join(timeout=300)

    assert results and results[0].success
    assert (tmp_path / "marts.duckdb").exists()
