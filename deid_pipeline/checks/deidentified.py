"""Checks of the tag-de-identified files against their inputs. Those that guard against PHI
leaving block the pixel, encoding and report stages of the partition when they fail."""

from collections.abc import Iterator

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetKey, multi_asset_check

from deid_pipeline.checks.results import check_result, check_spec
from deid_pipeline.core.checks.suites import DEIDENTIFIED_CHECKS
from deid_pipeline.resources import DataLake

DEIDENTIFIED_DICOM = AssetKey("deidentified_dicom")


@multi_asset_check(
    specs=[check_spec(check, DEIDENTIFIED_DICOM) for check in DEIDENTIFIED_CHECKS],
    description=(
        "Expectation suites (great-expectations) over the metadata of the de-identified files, "
        "read from the output tree, compared with the incoming metadata table."
    ),
)
def deidentified_dicom_checks(context: AssetCheckExecutionContext,
                              lake: DataLake) -> Iterator[AssetCheckResult]:
    # great-expectations takes seconds to import: only when a check runs.
    import pandas as pd

    from deid_pipeline.core.checks.expectations import evaluate_batches
    from deid_pipeline.core.checks.suites import (
        DEIDENTIFIED_SUITES_ROWS,
        deidentified_suite_batches,
    )
    from deid_pipeline.core.deid.batch import WorkPaths
    from deid_pipeline.core.tree_metadata import tree_metadata
    from deid_pipeline.core.workers import available_cpus
    from deid_pipeline.site_policy import site_policy

    day = context.partition_key
    files = pd.read_parquet(lake.stage(WorkPaths(lake.work(day)).files))
    folder = lake.stage(lake.deidentified(day))
    jobs = available_cpus()
    # Read from the tree itself, not from the deidentified_metadata table: the check must pass
    # before anything downstream of deidentified_dicom, that table included, is made.
    batches = deidentified_suite_batches(
        incoming=lake.read_table("dicom_metadata", day, filters=DEIDENTIFIED_SUITES_ROWS),
        outputs_of=dict(zip(files["source"], files["output"], strict=True)),
        read_outputs=lambda outputs: tree_metadata(folder, outputs, jobs=jobs).frame,
        policy=site_policy())  # the policy deidentified_dicom applies
    outcomes = {outcome.name: outcome for outcome in evaluate_batches(batches)}
    for check in DEIDENTIFIED_CHECKS:
        yield check_result(check, outcomes[check.name], DEIDENTIFIED_DICOM)
