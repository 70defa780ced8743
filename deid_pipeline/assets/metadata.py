"""Stage 2: every element of every file, as a table; and the same table of the de-identified
files, for the data checks and the dbt marts to compare."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.partitions import ingest_days
from deid_pipeline.policies import TRANSIENT_RETRY
from deid_pipeline.resources import DataLake


@asset(
    deps=[incoming_dicom],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="ingest",
    kinds={"dicom", "parquet", "duckdb"},
    owners=["team:imaging-data"],
    description=(
        "One row per DICOM element of every readable file, before de-identification: tag, "
        "keyword, VR, VM, value as text, its path through sequence items, private creator; and "
        "a slide_metadata table: every ImageDescription key and TIFF tag of every SVS page. "
        "Holds PHI: it stays inside the data root."
    ),
)
def dicom_metadata(context: AssetExecutionContext, lake: DataLake) -> MaterializeResult:
    from deid_pipeline.core.slides.aperio import SlideError
    from deid_pipeline.core.slides.metadata import slide_metadata, slide_metadata_frame
    from deid_pipeline.core.tree_metadata import write_tree_metadata
    from deid_pipeline.core.workers import available_cpus

    manifest = lake.read_table("incoming_dicom", context.partition_key)
    folder = lake.stage_incoming(context.partition_key)
    dicom = manifest.loc[manifest["readable"] & (manifest["kind"] == "dicom"), "relpath"]
    path, counts = lake.write_table_with(
        "dicom_metadata", context.partition_key,
        lambda tmp: write_tree_metadata(folder, dicom, tmp, jobs=available_cpus()))
    failed = counts.unparsable
    slide_rows = []
    for relpath in manifest.loc[manifest["kind"] == "slide", "relpath"]:
        try:
            slide_rows.extend(slide_metadata(folder / relpath, relpath))
        except SlideError:  # deidentified_slides quarantines it with the reason
            failed += 1
    slides = lake.write_table("slide_metadata", context.partition_key,
                              slide_metadata_frame(slide_rows))
    return MaterializeResult(
        metadata={
            "files": counts.files,
            "elements": counts.elements,
            "unparsable_files": failed,
            "elements_in_sequences": counts.in_sequences,
            "private_elements": counts.private,
            "slides": len({row.file for row in slide_rows}),
            "table": MetadataValue.path(lake.location(path)),
            "slide_table": MetadataValue.path(lake.location(slides)),
        }
    )


@asset(
    deps=["deidentified_dicom"],  # by key: assets.tags imports this module
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="deidentify",
    kinds={"dicom", "parquet", "duckdb"},
    owners=["team:imaging-data"],
    description=(
        "One row per DICOM element of every tag-de-identified file, flattened as dicom_metadata "
        "is; `file` is the pseudonymous output path. What the dbt marts compare with the "
        "incoming metadata."
    ),
)
def deidentified_metadata(context: AssetExecutionContext, lake: DataLake) -> MaterializeResult:
    import pandas as pd

    from deid_pipeline.core.deid.batch import WorkPaths
    from deid_pipeline.core.tree_metadata import write_tree_metadata
    from deid_pipeline.core.workers import available_cpus

    day = context.partition_key
    written = pd.read_parquet(lake.stage(WorkPaths(lake.work(day)).files))["output"]
    folder = lake.stage(lake.deidentified(day))
    path, counts = lake.write_table_with(
        "deidentified_metadata", day,
        lambda tmp: write_tree_metadata(folder, written, tmp, jobs=available_cpus()))
    return MaterializeResult(
        metadata={
            "files": counts.files,
            "elements": counts.elements,
            "unparsable_files": counts.unparsable,
            "private_elements": counts.private,
            "table": MetadataValue.path(lake.location(path)),
        }
    )
