"""Stage 1: what arrived in a day's drop folder."""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from deid_pipeline.assets.markdown import counts_table
from deid_pipeline.partitions import ingest_days
from deid_pipeline.policies import TRANSIENT_RETRY
from deid_pipeline.resources import DataLake


@asset(
    partitions_def=ingest_days,
    group_name="ingest",
    kinds={"dicom", "parquet"},
    owners=["team:imaging-data"],
    retry_policy=TRANSIENT_RETRY,
    description=(
        "The DICOM files and slides dropped into `incoming/<day>/`: a manifest with one row per "
        "file (size, SHA-256, modality, SOP class, transfer syntax, readable or why not)."
    ),
)
def incoming_dicom(context: AssetExecutionContext, lake: DataLake) -> MaterializeResult:
    from deid_pipeline.core.ingest import build_manifest

    folder = lake.stage_incoming(context.partition_key)
    if not folder.is_dir():
        # A retry would not make the drop appear: fail now rather than after the backoff.
        raise Failure(description=f"no drop folder for {context.partition_key}: "
                                  f"{lake.location(folder)}", allow_retries=False)
    manifest = build_manifest(folder)
    path = lake.write_table("incoming_dicom", context.partition_key, manifest)
    modalities = manifest["modality"].fillna("(none)").value_counts()
    return MaterializeResult(
        metadata={
            "files": len(manifest),
            "bytes": MetadataValue.int(int(manifest["size"].sum())),
            "dicom_files": int((manifest["kind"] == "dicom").sum()),
            "slides": int((manifest["kind"] == "slide").sum()),
            "unreadable": int((~manifest["readable"]).sum()),
            "modalities": counts_table(modalities.to_dict(), "modality", "files"),
            "table": MetadataValue.path(lake.location(path)),
        }
    )
