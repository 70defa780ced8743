"""The nightly run: at a set hour, the previous day's partition, by then complete."""

import os
from datetime import timedelta

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from deid_pipeline.jobs import deidentify_day
from deid_pipeline.partitions import ingest_days

NIGHTLY_HOUR_ENV = "DEID_NIGHTLY_HOUR"
DEFAULT_NIGHTLY_HOUR = 2


def nightly_hour() -> int:
    """`$DEID_NIGHTLY_HOUR` (0-23, in the partitions' time zone), else 2."""
    value = os.environ.get(NIGHTLY_HOUR_ENV) or str(DEFAULT_NIGHTLY_HOUR)
    if not value.strip().isdigit() or not 0 <= int(value) <= 23:
        raise ValueError(f"{NIGHTLY_HOUR_ENV} must be an hour from 0 to 23, not {value!r}")
    return int(value)


def nightly_schedule(hour: int) -> ScheduleDefinition:
    @schedule(name="nightly_deidentify", job=deidentify_day, cron_schedule=f"0 {hour} * * *",
              execution_timezone=ingest_days.timezone,
              description="Every stage for the previous day's drop, each night.")
    def nightly_deidentify(context: ScheduleEvaluationContext) -> RunRequest:
        day = (context.scheduled_execution_time - timedelta(days=1)).strftime(ingest_days.fmt)
        # The run key makes a re-evaluated tick launch the day once.
        return RunRequest(run_key=day, partition_key=day)

    return nightly_deidentify


nightly_deidentify = nightly_schedule(nightly_hour())
