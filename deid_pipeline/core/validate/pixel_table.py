"""A partition's burned-in PHI metrics in the form of the source system's detector table:
precision, recall and F1 per detector setting and modality, from the pixel stage's findings and
the ground-truth word boxes beside the inputs (`X.json` beside `X.dcm`, see pixel_metrics).

Two settings come from the same findings: "redact PHI" hides the boxes judged PHI (what
redacted_dicom filled), "redact all text" hides every box the OCR read. Boxes are grown by the
redaction margin, as `fill_boxes` grows them, before they are scored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pydicom

from deid_pipeline.core.pixels.ocr import Box
from deid_pipeline.core.pixels.redact import padded
from deid_pipeline.core.quiet import file_messages_muted
from deid_pipeline.core.validate.pixel_metrics import TruthWord, load_truth, score_image, summarise

REDACT_PHI = "redact PHI"
REDACT_ALL_TEXT = "redact all text"
ALL_MODALITIES = "all"
METRIC_TYPES = {"setting": "str", "modality": "str", "images": "int64", "phi_words": "int64",
                "precision": "float64", "recall": "float64", "f1": "float64",
                "non_phi_kept": "float64", "seconds_per_image": "float64"}
METRIC_COLUMNS = list(METRIC_TYPES)


@dataclass(frozen=True)
class ImageTruth:
    modality: str
    shape: tuple[int, int]  # rows, columns
    words: list[TruthWord]


def partition_truth(files: pd.DataFrame, incoming: Path) -> dict[str, ImageTruth]:
    """Ground truth of each written output (`files`: the tag stage's source ↔ output table)
    whose input has a sidecar, keyed by the output's path as the findings name it."""
    truth = {}
    for source, output in files[["source", "output"]].itertuples(index=False):
        sidecar = (incoming / source).with_suffix(".json")
        if not sidecar.is_file():
            continue
        with file_messages_muted():
            header = pydicom.dcmread(incoming / source, stop_before_pixels=True,
                                     specific_tags=["Modality", "Rows", "Columns"])
        truth[output] = ImageTruth(str(header.get("Modality") or "(none)"),
                                   (int(header.Rows), int(header.Columns)), load_truth(sidecar))
    return truth


def _boxes_by_file(findings: pd.DataFrame) -> dict[str, list[Box]]:
    return {file: list(zip(g.x1, g.y1, g.x2, g.y2, strict=True))
            for file, g in findings.groupby("file")}


def _setting_rows(setting: str, chosen: pd.DataFrame, truth: dict[str, ImageTruth],
                  seconds_per_image: float | None) -> list[dict]:
    boxes = _boxes_by_file(chosen)
    by_modality = defaultdict(list)
    for output, image in truth.items():
        rows, columns = image.shape
        hidden = [padded(box, rows, columns) for box in boxes.get(output, [])]
        by_modality[image.modality].append(score_image(image.words, hidden, image.shape))
    everything = [score for scores in by_modality.values() for score in scores]
    table = []
    for modality, scores in [(ALL_MODALITIES, everything), *sorted(by_modality.items())]:
        summary = summarise(scores)
        table.append({"setting": setting, "modality": modality,
                      **{k: summary[k] for k in METRIC_COLUMNS[2:-1]},
                      "seconds_per_image": (seconds_per_image if modality == ALL_MODALITIES
                                            else None)})
    return table


def metrics_frame(truth: dict[str, ImageTruth], findings: pd.DataFrame,
                  seconds_per_image: float | None = None) -> pd.DataFrame:
    """One row per setting and modality, each setting's `all` row first; `seconds_per_image`
    (the finding step's, one figure for the partition) goes on the `all` rows. No truth gives
    an empty table."""
    settings = {REDACT_PHI: findings[findings["is_phi"].astype(bool)], REDACT_ALL_TEXT: findings}
    rows = [row for setting, chosen in settings.items() if truth
            for row in _setting_rows(setting, chosen, truth, seconds_per_image)]
    return pd.DataFrame(rows, columns=METRIC_COLUMNS).astype(METRIC_TYPES)
