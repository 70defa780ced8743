"""Jobs: what the schedule, the sensor and a backfill launch."""

from dagster import AssetSelection, define_asset_job

from deid_pipeline.partitions import ingest_days

# Every asset of the code location, so that stages added later join the nightly run by themselves.
deidentify_day = define_asset_job(
    "deidentify_day",
    selection=AssetSelection.all(),
    partitions_def=ingest_days,
    description="Every stage of the pipeline for one ingest day.",
)
