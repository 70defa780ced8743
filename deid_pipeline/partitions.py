"""Partitions: one per ingest day, named by the drop folder `incoming/<YYYY-MM-DD>/`."""

from dagster import DailyPartitionsDefinition

# end_offset=1 makes today's partition exist already, so files dropped today can be processed
# today; the nightly schedule still targets the previous, complete day.
ingest_days = DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
