"""The slide branch: Aperio SVS whole-slide images de-identified beside the DICOM files."""

import shutil

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from deid_pipeline.assets.metadata import dicom_metadata
from deid_pipeline.partitions import ingest_days
from deid_pipeline.policies import TRANSIENT_RETRY
from deid_pipeline.resources import DataLake, PseudonymKey


# The slides' mapping, audit and quarantine: a folder of the partition's work folder.
SLIDES_WORK = "slides"


@asset(
    deps=[dicom_metadata],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="deidentify",
    kinds={"svs", "tiff"},
    owners=["team:imaging-data"],
    description=(
        "The partition's Aperio SVS slides de-identified: pyramid tiles copied as bytes, macro "
        "dropped, label dropped or replaced by a pseudonym label, identifying ImageDescription "
        "keys and TIFF tags removed, dates shifted with the patient's DICOM offset; each output "
        "verified with OpenSlide before it becomes visible."
    ),
)
def deidentified_slides(context: AssetExecutionContext, lake: DataLake,
                        pseudonym_key: PseudonymKey) -> MaterializeResult:
    from deid_pipeline.core.deid.batch import deidentify_tree
    from deid_pipeline.core.deid.engine import TagEngine
    from deid_pipeline.core.discovery import FileKind
    from deid_pipeline.site_policy import site_policy

    day = context.partition_key
    out, work = lake.root_path / "deidentified_slides" / day, lake.work(day) / SLIDES_WORK
    shutil.rmtree(out, ignore_errors=True)  # derived data: nothing of an earlier run lingers
    shutil.rmtree(work, ignore_errors=True)
    policy = site_policy()
    engine = TagEngine(policy, pseudonym_key.pseudonymizer(policy))
    report = deidentify_tree(lake.stage_incoming(day), out, work, engine,
                             kinds={FileKind.SLIDE})
    lake.publish(out)
    lake.publish(work)
    return MaterializeResult(metadata={
        "slides": report.written,
        "quarantined": report.quarantined,
        "quarantine_reasons": MetadataValue.json(report.reasons),
        "seconds": round(report.seconds, 2),
        "output": MetadataValue.path(lake.location(out)),
    })
