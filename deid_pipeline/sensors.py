"""The drop sensor: a new day folder (or S3 prefix) under `incoming/` starts that day's run."""

import json

from dagster import RunRequest, SensorEvaluationContext, SensorResult, sensor

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.jobs import deidentify_day
from deid_pipeline.partitions import ingest_days
from deid_pipeline.resources import DataLake


@sensor(job=deidentify_day, minimum_interval_seconds=120,
        description="Requests the partition of each day folder under incoming/ that holds files "
                    "and was never ingested. The nightly schedule re-runs the day once complete.")
def new_drop_sensor(context: SensorEvaluationContext, lake: DataLake) -> SensorResult:
    # The cursor: days already requested that are still in incoming/ (so it never outgrows it).
    requested = set(json.loads(context.cursor)) if context.cursor else set()
    days = [day for day in lake.incoming_days() if ingest_days.has_partition_key(day)]
    ingested = context.instance.get_materialized_partitions(incoming_dicom.key)
    new_days = [day for day in days
                if day not in requested and day not in ingested and lake.has_incoming_files(day)]
    return SensorResult(
        run_requests=[RunRequest(run_key=day, partition_key=day) for day in new_days],
        cursor=json.dumps(sorted(requested.intersection(days).union(new_days))),
    )
