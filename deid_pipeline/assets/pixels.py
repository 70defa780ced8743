"""Stages 4–6: burned-in PHI found, hidden, and the images encoded back in their own syntax.

The finding step runs the OCR models: it carries the `gpu` pool and the tags that send it to GPU
nodes (deid_pipeline.policies). Hiding and encoding are CPU work.
"""

import shutil

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from deid_pipeline.assets.markdown import counts_table
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.partitions import ingest_days
from deid_pipeline.policies import GPU_POOL, GPU_TAGS
from deid_pipeline.resources import DataLake


class PixelConfig(Config):
    device: str = "auto"  # "auto": CUDA when onnxruntime sees a GPU, else CPU
    redact_all_text: bool = False


@asset(
    deps=[deidentified_dicom],
    partitions_def=ingest_days,
    group_name="pixels",
    kinds={"dicom", "parquet", "onnx"},
    owners=["team:imaging-data"],
    pool=GPU_POOL,
    op_tags=GPU_TAGS,
    description=(
        "Every word the OCR (PP-OCR models from the rapidocr wheel) reads in every distinct frame "
        "of the de-identified files, judged PHI or not with its reason: the original file's own "
        "identifying values, patterns, an optional NER model, the allow-list. Boxes, reasons and "
        "scores only; never the text read."
    ),
)
def pixel_phi_findings(context: AssetExecutionContext, config: PixelConfig,
                       lake: DataLake) -> MaterializeResult:
    import pandas as pd

    from deid_pipeline.core.deid.batch import WorkPaths
    from deid_pipeline.core.pixels.batch import find_phi
    from deid_pipeline.core.pixels.stage import PixelRedactor

    day = context.partition_key
    files = pd.read_parquet(lake.stage(WorkPaths(lake.work(day)).files))
    redactor = PixelRedactor(device=config.device, redact_all_text=config.redact_all_text)
    findings, report = find_phi(files, lake.stage_incoming(day),
                                lake.stage(lake.deidentified(day)), redactor)
    path = lake.write_table("pixel_phi_findings", day, findings)
    phi = findings[findings["is_phi"].astype(bool)]
    return MaterializeResult(metadata={
        "files": report.files,
        "files_with_phi": report.changed,
        "phi_boxes": len(phi),
        "unreadable": len(report.failed),
        "seconds_per_file": round(report.seconds / max(report.files, 1), 3),
        "device": redactor.reader.device,
        "reasons": counts_table(phi["reason"].value_counts().to_dict(), "reason", "PHI boxes"),
        "table": MetadataValue.path(lake.location(path)),
    })


@asset(
    deps=[pixel_phi_findings],
    partitions_def=ingest_days,
    group_name="pixels",
    kinds={"dicom"},
    owners=["team:imaging-data"],
    description=(
        "The de-identified files with every PHI box filled on every frame by a value that reads "
        "as black in the image's photometric interpretation; rows, columns, bits and photometric "
        "kept. Redacted images are stored natively for the encoding step; the others are copied "
        "byte for byte."
    ),
)
def redacted_dicom(context: AssetExecutionContext, lake: DataLake) -> MaterializeResult:
    from deid_pipeline.core.pixels.batch import redact_tree

    day = context.partition_key
    out = lake.root_path / "redacted" / day
    shutil.rmtree(out, ignore_errors=True)  # derived data: nothing of an earlier run lingers
    findings = lake.read_table("pixel_phi_findings", day)
    report = redact_tree(findings, lake.stage(lake.deidentified(day)), out)
    lake.publish(out)
    return MaterializeResult(metadata={
        "files": report.files,
        "redacted": report.changed,
        "notes": MetadataValue.json(report.notes),
        "output": MetadataValue.path(lake.location(out)),
    })


class EncodeConfig(Config):
    lossy_policy: str = "same"  # "same": a lossy input gets a new lossy generation; "lossless"


@asset(
    deps=[redacted_dicom],
    partitions_def=ingest_days,
    group_name="deliver",
    kinds={"dicom"},
    owners=["team:imaging-data"],
    description=(
        "The partition's final output: redacted images encoded back in their input's own "
        "transfer syntax (or the documented lossless fallback), all others byte-identical to the "
        "tag-de-identified files."
    ),
)
def encoded_dicom(context: AssetExecutionContext, config: EncodeConfig,
                  lake: DataLake) -> MaterializeResult:
    import pandas as pd

    from deid_pipeline.core.deid.batch import WorkPaths
    from deid_pipeline.core.pixels.batch import encode_tree

    day = context.partition_key
    out = lake.root_path / "encoded" / day
    shutil.rmtree(out, ignore_errors=True)
    files = pd.read_parquet(lake.stage(WorkPaths(lake.work(day)).files))
    report = encode_tree(files, lake.stage(lake.root_path / "redacted" / day), out,
                         config.lossy_policy)
    lake.publish(out)
    return MaterializeResult(metadata={
        "files": report.files,
        "re_encoded": report.changed,
        "notes": MetadataValue.json(report.notes),
        "output": MetadataValue.path(lake.location(out)),
    })
