"""Stages 4–6: burned-in PHI found, hidden, and the images encoded back in their own syntax.

The finding step runs the OCR models: it carries the `gpu` pool and the tags that send it to GPU
nodes (deid_pipeline.policies). Hiding and encoding are CPU work. Each step runs its files on
worker processes (`workers` in its config), and puts a file it cannot process in its own
quarantine folder under the partition's work folder; such a file goes no further.
"""

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from deid_pipeline.assets.markdown import counts_table, inline_png
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.partitions import ingest_days
from deid_pipeline.policies import GPU_POOL, GPU_TAGS, TRANSIENT_RETRY
from deid_pipeline.resources import DataLake

if TYPE_CHECKING:  # the core is imported when a step runs, not when the code location loads
    from deid_pipeline.core.pixels.batch import StepReport


class WorkersConfig(Config):
    # Processes the step runs its files on; 0: one per CPU the step may use, at most
    # deid_pipeline.core.pixels.batch.MAX_WORKERS.
    workers: int = 0


class PixelConfig(WorkersConfig):
    device: str = "auto"  # "auto": CUDA when onnxruntime sees a GPU, else CPU
    redact_all_text: bool = False


def _workers(config: WorkersConfig) -> int:
    from deid_pipeline.core.pixels.batch import default_workers

    return config.workers or default_workers()


def _quarantine(lake: DataLake, day: str, step: str) -> Path:
    """A step's quarantine: in the work folder, which only the pipeline reads (pixels that
    failed a step may still show PHI)."""
    return lake.work(day) / "pixel_quarantine" / step


def _step_metadata(report: "StepReport", outcomes: dict[str, int]) -> dict:
    """What every pixel step reports: counts, quarantine, time per file, a table of outcomes."""
    return {
        "files": report.files,
        "quarantined": len(report.failed),
        "seconds_per_file": round(report.seconds / max(report.files, 1), 3),
        "workers": report.workers,
        "outcomes": counts_table({**outcomes, "quarantined": len(report.failed)},
                                 "outcome", "files"),
        "quarantine_reasons": MetadataValue.json(report.reasons),
    }


@asset(
    deps=[deidentified_dicom],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="pixels",
    kinds={"dicom", "parquet", "onnx"},
    owners=["team:imaging-data"],
    pool=GPU_POOL,
    op_tags=GPU_TAGS,
    description=(
        "Every word the OCR (PP-OCR models from the rapidocr wheel) reads in every distinct frame "
        "of the de-identified files, judged PHI or not with its reason: the original file's own "
        "identifying values, patterns, an optional NER model, the allow-list; then PHI found at "
        "one place on most images of a series, on the others that hold the same strokes. Boxes, "
        "reasons and scores only; never the text read. A file whose text cannot be read is "
        "quarantined."
    ),
)
def pixel_phi_findings(context: AssetExecutionContext, config: PixelConfig,
                       lake: DataLake) -> MaterializeResult:
    import pandas as pd

    from deid_pipeline.core.deid.batch import WorkPaths
    from deid_pipeline.core.pixels.batch import find_phi, resolved_device
    from deid_pipeline.core.pixels.stage import PixelRedactor
    from deid_pipeline.site_policy import site_policy

    day = context.partition_key
    quarantine = _quarantine(lake, day, "find")
    shutil.rmtree(quarantine, ignore_errors=True)
    files = pd.read_parquet(lake.stage(WorkPaths(lake.work(day)).files))
    redactor = PixelRedactor(device=config.device, redact_all_text=config.redact_all_text,
                             zones=site_policy().pixels.zones)
    findings, report = find_phi(files, lake.stage_incoming(day),
                                lake.stage(lake.deidentified(day)), redactor, quarantine,
                                _workers(config))
    lake.publish(quarantine)  # also clears what an earlier run quarantined
    path = lake.write_table("pixel_phi_findings", day, findings)
    phi = findings[findings["is_phi"].astype(bool)]
    return MaterializeResult(metadata={
        **_step_metadata(report, {"PHI found": report.changed,
                                  "no PHI": report.files - report.changed - len(report.failed)}),
        "files_with_phi": report.changed,
        "phi_boxes": len(phi),
        "device": resolved_device(config.device),
        "reasons": counts_table(phi["reason"].value_counts().to_dict(), "reason", "PHI boxes"),
        "table": MetadataValue.path(lake.location(path)),
    })


class RedactConfig(WorkersConfig):
    # A thumbnail of one redacted image in the metadata, shrunk and blurred so that no text in
    # it is legible (core.pixels.thumbnail).
    thumbnail: bool = True


def _redaction_preview(out: Path, report: "StepReport") -> str:
    """Markdown: a thumbnail of the first redacted file (path order), or why there is none."""
    import pydicom

    from deid_pipeline.core.pixels.thumbnail import thumbnail_png

    if not report.changed_files:
        return "No file of this partition needed redaction."
    png = thumbnail_png(pydicom.dcmread(out / report.changed_files[0]))
    return (f"{inline_png(png, 'redaction')}\n\nFirst frame of the first of "
            f"{report.changed} redacted files, PHI boxes filled black (blurred: no text is legible).")


@asset(
    deps=[pixel_phi_findings],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="pixels",
    kinds={"dicom"},
    owners=["team:imaging-data"],
    description=(
        "The de-identified files with every PHI box filled on every frame by a value that reads "
        "as black in the image's photometric interpretation; rows, columns, bits and photometric "
        "kept. Redacted images are stored natively for the encoding step; the others are copied "
        "byte for byte. Files quarantined by the finding step are left out."
    ),
)
def redacted_dicom(context: AssetExecutionContext, config: RedactConfig,
                   lake: DataLake) -> MaterializeResult:
    from deid_pipeline.core.pixels.batch import quarantined_files, redact_tree

    day = context.partition_key
    out = lake.root_path / "redacted" / day
    quarantine = _quarantine(lake, day, "redact")
    shutil.rmtree(out, ignore_errors=True)  # derived data: nothing of an earlier run lingers
    shutil.rmtree(quarantine, ignore_errors=True)
    held = quarantined_files(lake.stage(_quarantine(lake, day, "find")))
    findings = lake.read_table("pixel_phi_findings", day)
    report = redact_tree(findings, lake.stage(lake.deidentified(day)), out, quarantine, held,
                         _workers(config))
    lake.publish(out)
    lake.publish(quarantine)
    preview = (_redaction_preview(out, report) if config.thumbnail
               else "Thumbnail turned off (`thumbnail: false`).")
    return MaterializeResult(metadata={
        **_step_metadata(report, {"redacted": report.changed,
                                  "copied unchanged": report.files - report.changed
                                  - len(report.failed),
                                  "held back (finding step)": len(held)}),
        "redacted": report.changed,
        "held_back": len(held),
        "redaction": MetadataValue.md(preview),
        "notes": MetadataValue.json(report.notes),
        "output": MetadataValue.path(lake.location(out)),
    })


class EncodeConfig(WorkersConfig):
    lossy_policy: str = "same"  # "same": a lossy input gets a new lossy generation; "lossless"


@asset(
    deps=[redacted_dicom],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
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
    quarantine = _quarantine(lake, day, "encode")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(quarantine, ignore_errors=True)
    files = pd.read_parquet(lake.stage(WorkPaths(lake.work(day)).files))
    report = encode_tree(files, lake.stage(lake.root_path / "redacted" / day), out, quarantine,
                         config.lossy_policy, _workers(config))
    lake.publish(out)
    lake.publish(quarantine)
    return MaterializeResult(metadata={
        **_step_metadata(report, {"re-encoded": report.changed,
                                  "copied unchanged": report.files - report.changed
                                  - len(report.failed)}),
        "re_encoded": report.changed,
        "notes": MetadataValue.json(report.notes),
        "output": MetadataValue.path(lake.location(out)),
    })
