"""Stage 7: how well the partition was de-identified, measured the way MIDI-B measures it and
against the synthetic corpus's ground-truth word boxes.

The MIDI-B results quote the answer key's original values (names, IDs, UIDs), so their files go
to the partition's work folder beside the mapping files; the pixel metrics are aggregates and go
to `reports/<day>/`. Metadata shows scores and counts only.
"""

import os

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetRecordsFilter,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from deid_pipeline.assets.markdown import inline_png
from deid_pipeline.assets.pixels import encoded_dicom, pixel_phi_findings
from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.quarantine import OWNER_ONLY_DIR
from deid_pipeline.partitions import ingest_days
from deid_pipeline.policies import TRANSIENT_RETRY
from deid_pipeline.resources import DataLake

# Digits shown for scores and rates in metadata tables.
DIGITS = 4


def markdown_table(frame: pd.DataFrame) -> MetadataValue:
    """A frame as a markdown table, its columns as headers, missing values blank."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join("" if pd.isna(value) else str(value) for value in row) + " |"
            for row in frame.itertuples(index=False)]
    return MetadataValue.md("\n".join([header, rule, *rows]))


class MidibValidationConfig(Config):
    # The answer key: a path relative to the day's drop folder, or an absolute local path.
    answer_key: str = "answer_key.db"
    # pixels_hidden: read each box of the answer key with the project's OCR. Off, those checks
    # are left out (not counted as passed).
    read_pixels: bool = True


@asset(
    deps=[encoded_dicom],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="validate",
    kinds={"parquet", "sqlite", "excel"},
    check_specs=[AssetCheckSpec(
        "all_midib_checks_passed", asset="midib_validation_report",
        description="Every check of the drop's MIDI-B answer key passed on the final output "
                    "(see the workbook's Discrepancies sheet); none to run passes.")],
    owners=["team:imaging-data"],
    description=(
        "The ten MIDI-B checks of the drop's answer key run over the partition's final output "
        "with the mapping files: every check's result as the `midib_results` table (the reference "
        "program's columns), an SQLite copy and the scoring workbook (Scoring, Actions, "
        "Categories, Scoring by series, Modalities, one sheet per check, Discrepancies). A drop "
        "without an answer key materializes with no checks and says so."
    ),
)
def midib_validation_report(context: AssetExecutionContext, config: MidibValidationConfig,
                            lake: DataLake) -> MaterializeResult:
    from deid_pipeline.core.deid.batch import WorkPaths
    from deid_pipeline.core.validate.excel import write_workbook
    from deid_pipeline.core.validate.midib import MidibValidator, results_frame, scoring
    from deid_pipeline.core.validate.results_db import write_results_db

    day = context.partition_key
    answer_key = lake.stage_incoming(day) / config.answer_key
    if not answer_key.is_file():
        # An empty table replaces the results of an earlier run that had a key.
        path = lake.write_table("midib_results", day, results_frame([]))
        return MaterializeResult(check_results=[_midib_check(0, 0)], metadata={
            "checks": 0,
            "reason": f"no answer key: {config.answer_key} is not in the drop of {day}",
            "table": MetadataValue.path(lake.location(path)),
        })
    work = WorkPaths(lake.work(day))
    lake.stage(work.uid_mapping)
    lake.stage(work.patid_mapping)
    read_box = None
    if config.read_pixels:
        from deid_pipeline.core.validate.box_reader import OcrBoxReader

        read_box = OcrBoxReader()
    validator = MidibValidator.from_files(answer_key, work.root, read_box)
    results = validator.results(lake.stage(lake.root_path / "encoded" / day))
    table = lake.write_table("midib_results", day, results)
    reports = work.root / "reports"
    # The results quote original values: owner-only, as everything else in the work folder.
    reports.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIR)
    os.chmod(reports, OWNER_ONLY_DIR)
    database, workbook = reports / "midib_results.sqlite", reports / "midib_report.xlsx"
    write_results_db(results, database)
    write_workbook(results, workbook)
    lake.publish(reports)
    score = scoring(results).set_index("Category")
    per_check = score.drop(index="All").rename_axis("check").reset_index()
    per_check["check"] = per_check["check"].str.strip("<>")
    per_check["Score"] = per_check["Score"].round(DIGITS)
    return MaterializeResult(check_results=[
        _midib_check(int(score.loc["All", "Total"]), int(score.loc["All", "Fail"]))], metadata={
        "checks": int(score.loc["All", "Total"]),
        "failed": int(score.loc["All", "Fail"]),
        "score": MetadataValue.float(round(float(score.loc["All", "Score"]), 6)),
        "scores": markdown_table(per_check[["check", "Score", "Pass", "Fail", "Total"]]),
        "pixels_hidden_read": config.read_pixels,
        "table": MetadataValue.path(lake.location(table)),
        "database": MetadataValue.path(lake.location(database)),
        "workbook": MetadataValue.path(lake.location(workbook)),
    })


def _midib_check(checks: int, failed: int) -> AssetCheckResult:
    return AssetCheckResult(check_name="all_midib_checks_passed", passed=failed == 0,
                            severity=AssetCheckSeverity.WARN,
                            metadata={"checks": checks, "failed": failed})


def finding_step_timing(context: AssetExecutionContext) -> tuple[float | None, str | None]:
    """Seconds per file and device of the partition's latest pixel_phi_findings materialization,
    (None, None) when the instance holds none."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=pixel_phi_findings.key,
                           asset_partitions=[context.partition_key]), limit=1).records
    if not records or records[0].asset_materialization is None:
        return None, None
    metadata = records[0].asset_materialization.metadata
    seconds, device = metadata.get("seconds_per_file"), metadata.get("device")
    return (float(seconds.value) if seconds is not None else None,
            str(device.value) if device is not None else None)


@asset(
    deps=[pixel_phi_findings],
    partitions_def=ingest_days,
    retry_policy=TRANSIENT_RETRY,
    group_name="validate",
    kinds={"parquet", "excel"},
    owners=["team:imaging-data"],
    description=(
        "Burned-in PHI found and hidden, scored against the ground-truth word boxes beside the "
        "inputs (the synthetic corpus's sidecars): precision, recall, F1, non-PHI text kept and "
        "seconds per image, per modality, for the boxes judged PHI (what redacted_dicom fills) "
        "and for every box read (redact all text); as the source system's detector table, a "
        "workbook and a recall-by-modality chart. A drop without ground truth materializes with "
        "an empty table and says so."
    ),
)
def pixel_phi_metrics(context: AssetExecutionContext, lake: DataLake) -> MaterializeResult:
    from deid_pipeline.core.deid.batch import WorkPaths
    from deid_pipeline.core.validate.excel import write_sheets
    from deid_pipeline.core.validate.pixel_table import (
        ALL_MODALITIES,
        REDACT_PHI,
        metrics_frame,
        partition_truth,
    )
    from deid_pipeline.core.validate.recall_chart import recall_chart

    day = context.partition_key
    files = pd.read_parquet(lake.stage(WorkPaths(lake.work(day)).files))
    truth = partition_truth(files, lake.stage_incoming(day))
    seconds, device = finding_step_timing(context)
    metrics = metrics_frame(truth, lake.read_table("pixel_phi_findings", day), seconds)
    table = lake.write_table("pixel_phi_metrics", day, metrics)
    if metrics.empty:
        return MaterializeResult(metadata={
            "images": 0,
            "reason": f"no ground truth: no input of {day} has a word-box sidecar (X.json)",
            "table": MetadataValue.path(lake.location(table)),
        })
    reports = lake.root_path / "reports" / day
    workbook, chart = reports / "pixel_phi_metrics.xlsx", reports / "pixel_recall_by_modality.png"
    write_sheets({"Pixel PHI metrics": metrics}, workbook)
    png = recall_chart(metrics)
    write_atomically(chart, lambda tmp: tmp.write_bytes(png))
    lake.publish(reports)
    headline = metrics.set_index(["setting", "modality"]).loc[(REDACT_PHI, ALL_MODALITIES)]
    return MaterializeResult(metadata={
        "images": int(headline["images"]),
        "phi_words": int(headline["phi_words"]),
        "precision": MetadataValue.float(float(headline["precision"])),
        "recall": MetadataValue.float(float(headline["recall"])),
        "f1": MetadataValue.float(float(headline["f1"])),
        "device": device or "unknown",
        "metrics": markdown_table(metrics.round(DIGITS)),
        "recall_chart": MetadataValue.md(inline_png(png, "recall by modality")),
        "table": MetadataValue.path(lake.location(table)),
        "workbook": MetadataValue.path(lake.location(workbook)),
        "chart": MetadataValue.path(lake.location(chart)),
    })
