"""An archive copy of a partition's de-identified files in one chosen transfer syntax."""

import shutil

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from deid_pipeline.assets.pixels import encoded_dicom
from deid_pipeline.partitions import ingest_days
from deid_pipeline.policies import TRANSIENT_RETRY
from deid_pipeline.resources import DataLake


class TranscodeConfig(Config):
    syntax: str = "j2k-lossless"  # a name of deid_pipeline.core.transcode.SYNTAX_NAMES or a UID


@asset(
    deps=[encoded_dicom],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="deliver",
    kinds={"dicom"},
    owners=["team:imaging-data"],
    description=(
        "The partition's final output converted to one transfer syntax (JPEG 2000 "
        "Lossless by default) for archives that want a single format. Where the syntax cannot "
        "hold an image, the documented lossless fallback is written and noted."
    ),
)
def transcoded_dicom(context: AssetExecutionContext, config: TranscodeConfig,
                     lake: DataLake) -> MaterializeResult:
    from deid_pipeline.core.transcode import resolve_syntax, transcode_tree

    day = context.partition_key
    out = lake.root_path / "transcoded" / day
    quarantine = lake.work(day) / "transcode_quarantine"
    shutil.rmtree(out, ignore_errors=True)  # derived data: no file of an earlier run lingers
    report = transcode_tree(lake.stage(lake.root_path / "encoded" / day), out,
                            resolve_syntax(config.syntax), quarantine)
    lake.publish(out)
    if quarantine.exists():
        lake.publish(quarantine)
    return MaterializeResult(metadata={
        "syntax": config.syntax,
        "transcoded": report.transcoded,
        "copied_unchanged": report.copied,
        "quarantined": report.quarantined,
        "notes": MetadataValue.json(dict(report.notes)),
        "output": MetadataValue.path(lake.location(out)),
    })
