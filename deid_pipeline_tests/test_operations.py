"""Operations: the nightly schedule, the drop sensor, retries, GPU routing and idempotent
re-materialization."""

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from dagster import (
    AssetMaterialization,
    Backoff,
    DagsterInstance,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.definitions import all_assets, defs
from deid_pipeline.executors import EXECUTOR_ENV, executor_from_environment
from deid_pipeline.policies import GPU_POOL, GPU_TAGS, TRANSIENT_RETRY
from deid_pipeline.resources import DataLake, PseudonymKey
from deid_pipeline.schedules import (
    NIGHTLY_HOUR_ENV,
    nightly_deidentify,
    nightly_hour,
    nightly_schedule,
)
from deid_pipeline.sensors import new_drop_sensor
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

DAY = "2026-01-15"
PIXELS_GROUP = "pixels"


def test_nightly_schedule_runs_every_stage_for_the_previous_day():
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 1, 16, 2, tzinfo=timezone.utc))
    request = nightly_deidentify(context)
    assert request.partition_key == "2026-01-15" and request.run_key == "2026-01-15"
    assert nightly_deidentify.job_name == "deidentify_day"
    job = defs.resolve_job_def("deidentify_day")
    assert set(job.asset_layer.executable_asset_keys) == {
        spec.key for spec in defs.resolve_all_asset_specs()}


def test_nightly_hour_comes_from_the_environment(monkeypatch):
    assert nightly_deidentify.cron_schedule == "0 2 * * *"
    monkeypatch.setenv(NIGHTLY_HOUR_ENV, "5")
    assert nightly_schedule(nightly_hour()).cron_schedule == "0 5 * * *"
    for bad in ("24", "abc"):
        monkeypatch.setenv(NIGHTLY_HOUR_ENV, bad)
        with pytest.raises(ValueError, match=f"DEID_NIGHTLY_HOUR must be .* 0 to 23, not '{bad}'"):
            nightly_hour()


def evaluate_sensor(instance, lake, cursor=None):
    with build_sensor_context(instance=instance, cursor=cursor,
                              resources={"lake": lake}) as context:
        result = new_drop_sensor(context)
    return [r.partition_key for r in result.run_requests], result.cursor


def test_drop_sensor_requests_each_new_day_once(tmp_path):
    incoming = tmp_path / "incoming"
    (incoming / "2026-01-13").mkdir(parents=True)
    (incoming / "2026-01-13" / "a.dcm").write_bytes(b"ingested already")
    (incoming / "2026-01-14" / "study").mkdir(parents=True)
    (incoming / "2026-01-14" / "study" / "a.dcm").write_bytes(b"new")
    (incoming / "2026-01-15").mkdir()  # created, nothing in it yet
    (incoming / "2026-01-16").mkdir()
    (incoming / "2026-01-16" / ".a.dcm.partial").write_bytes(b"upload in progress")
    (incoming / "notes").mkdir()  # not a day
    (incoming / "notes" / "readme.txt").write_text("not a drop")
    lake = DataLake(root=str(tmp_path))

    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=incoming_dicom.key, partition="2026-01-13"))
        days, cursor = evaluate_sensor(instance, lake)
        assert days == ["2026-01-14"]
        assert evaluate_sensor(instance, lake, cursor)[0] == []  # the cursor: no second request

        (incoming / "2026-01-15" / "b.dcm").write_bytes(b"arrived")
        days, cursor = evaluate_sensor(instance, lake, cursor)
        assert days == ["2026-01-15"]
        assert json.loads(cursor) == ["2026-01-14", "2026-01-15"]


def test_ingest_retries_transient_errors_with_exponential_backoff():
    assert incoming_dicom.op.retry_policy == TRANSIENT_RETRY
    assert TRANSIENT_RETRY.max_retries == 3 and TRANSIENT_RETRY.backoff == Backoff.EXPONENTIAL


def test_a_missing_drop_fails_at_once_without_retries(tmp_path):
    result = materialize([incoming_dicom], partition_key=DAY, raise_on_error=False,
                         resources={"lake": DataLake(root=str(tmp_path))})
    events = result.all_node_events
    assert not result.success
    assert not [e for e in events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def op_tag(assets_def, name):
    """An op tag as Dagster keeps it: dict values are stored as JSON text."""
    value = assets_def.op.tags.get(name)
    return json.loads(value) if isinstance(value, str) else value


def expected_tag(name):
    value = GPU_TAGS[name]
    return json.loads(value) if isinstance(value, str) else value


def test_gpu_tags_route_a_step_to_a_gpu_node_and_task():
    k8s = GPU_TAGS["dagster-k8s/config"]
    assert k8s["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert k8s["pod_spec_config"]["node_selector"]
    assert k8s["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    ecs_container = json.loads(GPU_TAGS["ecs/container_overrides"])
    assert ecs_container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    ecs_task = json.loads(GPU_TAGS["ecs/run_task_kwargs"])
    assert ecs_task["capacityProviderStrategy"][0]["capacityProvider"]


def test_gpu_steps_are_pixel_steps_routed_whole():
    """A step either claims the `gpu` pool and carries every GPU tag, or does neither (half the
    routing would hold a GPU slot on a CPU node, or take a GPU node without a slot); such steps
    are pixel steps, and the pixel stage has one."""
    gpu_assets = []
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable:
            continue
        tags = {name: op_tag(assets_def, name) for name in GPU_TAGS}
        routed = [assets_def.op.pool == GPU_POOL,
                  *(tags[name] == expected_tag(name) for name in GPU_TAGS)]
        assert all(routed) or not any(routed), (assets_def.keys, routed)
        if all(routed):
            assert set(assets_def.group_names_by_key.values()) == {PIXELS_GROUP}, assets_def.keys
            gpu_assets.append(assets_def)
    assert gpu_assets, "no step of the pixels group runs on a GPU"


def test_executor_is_chosen_by_the_deployment(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert executor_from_environment() is None  # Dagster's default: multiprocess
    monkeypatch.setenv(EXECUTOR_ENV, "in_process")
    assert executor_from_environment().name == "in_process"
    monkeypatch.setenv(EXECUTOR_ENV, "ecs")
    assert executor_from_environment().name == "ecs"
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    with pytest.raises(ValueError, match="multiprocess, in_process, k8s, ecs"):
        executor_from_environment()


def lake_files(root: Path) -> dict[str, bytes]:
    """Every file the pipeline derived, by path: all but the drop itself."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != "incoming"}


def test_rematerializing_a_partition_gives_byte_identical_outputs(tmp_path, deid_secret):
    incoming = tmp_path / "incoming" / DAY
    for n, name in enumerate(["DOE^JANE", "ROE^RICHARD"], start=1):
        ds = ct_with_nested_and_private()
        ds.PatientName, ds.PatientID = name, f"MRN{n}"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.4.5.6.7.1.{n}"
        ds.Rows = ds.Columns = 64  # large enough to transcode to JPEG 2000
        ds.PixelData = (np.arange(64 * 64, dtype="<u2") * n % 4096).tobytes()
        write(ds, incoming / f"patient{n}" / "1.dcm")
    lake = DataLake(root=str(tmp_path))
    resources = {"lake": lake, "pseudonym_key": PseudonymKey()}

    assert materialize(all_assets, partition_key=DAY, resources=resources).success
    first = lake_files(tmp_path)
    assert materialize(all_assets, partition_key=DAY, resources=resources).success
    second = lake_files(tmp_path)

    assert any(path.startswith("deidentified/") for path in first)
    assert any(path.startswith("tables/") for path in first)
    assert sorted(second) == sorted(first)
    changed = [path for path in first if first[path] != second[path]]
    assert changed == []
