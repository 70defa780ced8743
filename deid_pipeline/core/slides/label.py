"""Draw a slide label: a barcode-like bar pattern over lines of text, black on white."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MARGIN = 0.06  # of the label's width


def render_label(lines: Sequence[str], *, width: int, height: int,
                 barcode: str | None = None) -> np.ndarray:
    """An RGB label image. With `barcode`, its top third is bars whose widths follow a hash of
    the text: it looks like a 1-D barcode and differs per value, but no reader will decode it."""
    image = np.full((height, width, 3), 255, np.uint8)
    margin = max(2, int(width * _MARGIN))
    top = margin
    if barcode is not None:
        bars_bottom = height // 3
        _draw_bars(image, barcode, margin, width - margin, top, bars_bottom)
        top = bars_bottom + margin
    if lines:
        line_height = (height - margin - top) // len(lines)
        for index, line in enumerate(lines):
            scale = _fit_scale(line, width - 2 * margin, int(line_height * 0.7))
            baseline = top + (index + 1) * line_height - int(line_height * 0.2)
            cv2.putText(image, line, (margin, baseline), _FONT, scale, (0, 0, 0),
                        max(1, int(scale * 2)), cv2.LINE_AA)
    return image


def _draw_bars(image: np.ndarray, text: str, left: int, right: int, top: int,
               bottom: int) -> None:
    widths = [1 + byte % 4 for byte in hashlib.sha256(text.encode()).digest() * 4]
    unit = max(1, (right - left) // sum(widths))
    x = left
    for index, bar in enumerate(widths):
        if x + bar * unit > right:
            break
        if index % 2 == 0:
            image[top:bottom, x:x + bar * unit] = 0
        x += bar * unit


def _fit_scale(text: str, max_width: int, max_height: int) -> float:
    (text_width, text_height), _ = cv2.getTextSize(text, _FONT, 1.0, 2)
    return max(0.2, min(max_width / max(text_width, 1), max_height / max(text_height, 1)))
