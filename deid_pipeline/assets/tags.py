"""Stage 3: tags de-identified by PS3.15 Annex E and the policy."""

import shutil

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from deid_pipeline.assets.markdown import counts_table
from deid_pipeline.assets.metadata import dicom_metadata
from deid_pipeline.assets.slides import SLIDES_WORK
from deid_pipeline.partitions import ingest_days
from deid_pipeline.policies import TRANSIENT_RETRY
from deid_pipeline.resources import DataLake, PseudonymKey


@asset(
    deps=[dicom_metadata],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="deidentify",
    kinds={"dicom"},
    check_specs=[
        # A day whose every file went to quarantine would go on to publish an empty output.
        AssetCheckSpec("files_deidentified", asset="deidentified_dicom", blocking=True,
                       description="Some DICOM file was de-identified, unless the drop had none."),
        AssetCheckSpec("nothing_quarantined", asset="deidentified_dicom",
                       description="Every DICOM file of the drop was de-identified: none went "
                                   "to quarantine (see quarantine_reasons)."),
    ],
    owners=["team:imaging-data"],
    description=(
        "Every DICOM file of the partition with its tags de-identified (PS3.15 Annex E basic "
        "profile, options and the policy file), written under pseudonymous paths. Mapping files, "
        "the per-element audit and the quarantine go to the partition's work folder."
    ),
)
def deidentified_dicom(context: AssetExecutionContext, lake: DataLake,
                       pseudonym_key: PseudonymKey) -> MaterializeResult:
    from deid_pipeline.core.deid.batch import deidentify_tree
    from deid_pipeline.core.deid.engine import TagEngine
    from deid_pipeline.core.discovery import FileKind
    from deid_pipeline.core.workers import available_cpus
    from deid_pipeline.site_policy import site_policy

    day = context.partition_key
    out, work = lake.deidentified(day), lake.work(day)
    # Derived data only: a re-run starts clean so that no output of an earlier run lingers.
    # The slide branch keeps its own work folder inside the partition's: not this step's to clear.
    shutil.rmtree(out, ignore_errors=True)
    for entry in work.iterdir() if work.is_dir() else ():
        if entry.name != SLIDES_WORK:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    policy = site_policy()
    engine = TagEngine(policy, pseudonym_key.pseudonymizer(policy))
    # Slides have their own asset; anything that is not a slide is tried as DICOM.
    report = deidentify_tree(lake.stage_incoming(day), out, work, engine, jobs=available_cpus(),
                             kinds={FileKind.DICOM, FileKind.UNKNOWN})
    lake.publish(out)
    lake.publish(work)
    files = report.written + report.quarantined
    return MaterializeResult(
        check_results=[
            AssetCheckResult(check_name="files_deidentified",
                             passed=report.written > 0 or files == 0,
                             metadata={"files": report.written, "quarantined": report.quarantined}),
            AssetCheckResult(check_name="nothing_quarantined", passed=report.quarantined == 0,
                             severity=AssetCheckSeverity.WARN,
                             metadata={"quarantined": report.quarantined,
                                       "reasons": MetadataValue.json(report.reasons)}),
        ],
        metadata={
            "files": report.written,
            "quarantined": report.quarantined,
            "seconds_per_file": round(report.seconds / max(files, 1), 4),
            "actions": counts_table(report.actions, "action", "elements"),
            "quarantine_reasons": MetadataValue.json(report.reasons),
            "output": MetadataValue.path(lake.location(out)),
        }
    )
