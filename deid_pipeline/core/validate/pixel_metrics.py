"""How well burned-in PHI was found and hidden, against ground-truth word boxes.

Two ground-truth formats: the synthetic corpus's sidecars (`words` with `bbox` and `is_phi`) and
the development set's (`annotation` with `value` boxes that are PHI and `key` boxes that are
labels). A PHI word counts as hidden when the redacted boxes cover at least `HIDDEN_COVERAGE` of
its area; a non-PHI word counts as kept when they cover at most `KEPT_COVERAGE` of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deid_pipeline.core.pixels.ocr import Box

HIDDEN_COVERAGE = 0.9
KEPT_COVERAGE = 0.5


@dataclass(frozen=True)
class TruthWord:
    box: Box  # inclusive corners
    is_phi: bool
    category: str


def load_truth(sidecar: Path) -> list[TruthWord]:
    data = json.loads(Path(sidecar).read_text())
    if "words" in data:
        return [TruthWord(tuple(w["bbox"]), bool(w["is_phi"]), w.get("category", ""))
                for w in data["words"]]
    words = []
    for entry in data.get("annotation", []):
        if not entry["value"].get("text", "").strip():
            continue  # an annotation with no value marks nothing
        words.append(TruthWord(tuple(entry["value"]["bbox"]), True, entry["key"]["text"]))
        if entry["key"].get("bbox"):
            words.append(TruthWord(tuple(entry["key"]["bbox"]), False, "label"))
    return words


def _mask(boxes: list[Box], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for x1, y1, x2, y2 in boxes:
        mask[max(0, y1):y2 + 1, max(0, x1):x2 + 1] = True
    return mask


def _covered(mask: np.ndarray, box: Box) -> float:
    x1, y1, x2, y2 = box
    region = mask[max(0, y1):y2 + 1, max(0, x1):x2 + 1]
    return float(region.mean()) if region.size else 0.0


@dataclass
class ImageScore:
    phi_words: int = 0
    phi_hidden: int = 0
    other_words: int = 0
    other_kept: int = 0
    redacted_boxes: int = 0
    redacted_on_phi: int = 0  # redacted boxes that overlap a PHI word
    outside_pixels: int = 0  # pixels outside every truth box
    outside_unchanged: int = 0


def score_image(truth: list[TruthWord], redacted: list[Box], shape: tuple[int, int],
                changed: np.ndarray | None = None) -> ImageScore:
    """Score one image; `changed` is the mask of pixels the redaction altered (for the share of
    pixels outside text boxes left unchanged)."""
    score = ImageScore()
    mask = _mask(redacted, shape)
    # A redacted label (the "DOB:" of a hidden birth date) is no false alarm: it went with its value.
    phi_mask = _mask([w.box for w in truth if w.is_phi or w.category == "label"], shape)
    for word in truth:
        coverage = _covered(mask, word.box)
        if word.is_phi:
            score.phi_words += 1
            score.phi_hidden += coverage >= HIDDEN_COVERAGE
        elif word.category != "label":  # a field's label may go with its value, or stay
            score.other_words += 1
            score.other_kept += coverage <= KEPT_COVERAGE
    score.redacted_boxes = len(redacted)
    score.redacted_on_phi = sum(_covered(phi_mask, box) > 0 for box in redacted)
    if changed is not None:
        outside = ~_mask([w.box for w in truth], shape)
        score.outside_pixels = int(outside.sum())
        score.outside_unchanged = int((outside & ~changed).sum())
    return score


def summarise(scores: list[ImageScore]) -> dict[str, float]:
    total = ImageScore()
    for s in scores:
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(s, name))
    recall = total.phi_hidden / total.phi_words if total.phi_words else 1.0
    precision = total.redacted_on_phi / total.redacted_boxes if total.redacted_boxes else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "images": len(scores), "phi_words": total.phi_words, "recall": round(recall, 4),
        "precision": round(precision, 4), "f1": round(f1, 4),
        "non_phi_kept": round(total.other_kept / total.other_words, 4) if total.other_words else 1.0,
        "outside_unchanged": (round(total.outside_unchanged / total.outside_pixels, 5)
                              if total.outside_pixels else 1.0),
    }
