"""Checks of the incoming metadata (dicom_metadata): what later stages rely on. Not blocking:
de-identification quarantines a file without its UIDs, and a missing modality is a gap to
report, not a leak."""

from collections.abc import Iterator

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetKey, multi_asset_check

from deid_pipeline.checks.results import check_result, check_spec
from deid_pipeline.core.checks.suites import INCOMING_CHECKS
from deid_pipeline.resources import DataLake

DICOM_METADATA = AssetKey("dicom_metadata")


@multi_asset_check(
    specs=[check_spec(check, DICOM_METADATA) for check in INCOMING_CHECKS],
    description="Expectation suites (great-expectations) over the incoming metadata table.",
)
def incoming_metadata_checks(context: AssetCheckExecutionContext,
                             lake: DataLake) -> Iterator[AssetCheckResult]:
    # great-expectations takes seconds to import: only when a check runs.
    from deid_pipeline.core.checks.expectations import evaluate
    from deid_pipeline.core.checks.suites import INCOMING_SUITES_ROWS, incoming_suites

    day = context.partition_key
    files = lake.read_table("dicom_metadata", day, columns=["file"])["file"].unique()
    metadata = lake.read_table("dicom_metadata", day, filters=INCOMING_SUITES_ROWS)
    outcomes = {outcome.name: outcome for outcome in evaluate(incoming_suites(metadata, files))}
    for check in INCOMING_CHECKS:
        yield check_result(check, outcomes[check.name], DICOM_METADATA)
