"""Burn text into pixel arrays with OpenCV's Hershey fonts and report where each word landed.

A word's box is taken from the pixels its rendering actually changed (across all frames), not
from the font metrics: anti-aliased rims, descenders and low-contrast ink make the two differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from deid_pipeline.core.synth.pixels import GREY_ENTRIES, PALETTE_WHITE, PALETTE_YELLOW
from deid_pipeline.core.synth.plan import PixelSpec

FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX,
         cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL)
MIN_TEXT_HEIGHT = 7  # cap height in pixels; a block that only fits smaller is dropped
MAX_TEXT_HEIGHT = 30
LINE_PITCH = 1.6  # baseline-to-baseline distance in text heights
LOW_CONTRAST = 0.05  # ink this fraction of the image's value spread above the background
VISIBLE_CONTRAST = 0.15  # an extreme ink closer than this to the background swaps extremes
BLOCK_GAP = 4  # pixels kept free between blocks


class Ink(Enum):
    MAXIMUM = "maximum"  # largest stored value of Bits Stored
    MINIMUM = "minimum"  # smallest stored value
    LOW_CONTRAST = "low_contrast"  # a few percent above the local background
    WHITE = "white"
    YELLOW = "yellow"


class Corner(Enum):
    TOP_LEFT = "top_left"
    TOP_RIGHT = "top_right"
    BOTTOM_LEFT = "bottom_left"
    BOTTOM_RIGHT = "bottom_right"
    MIDDLE_LEFT = "middle_left"
    MIDDLE_RIGHT = "middle_right"
    HEADER = "header"  # inside the header band, left-aligned


@dataclass(frozen=True)
class Word:
    text: str
    category: str
    is_phi: bool


@dataclass(frozen=True)
class TextLine:
    words: tuple[Word, ...] = ()
    scale_bar_px: int = 0  # a line holding a scale bar of this length instead of words


@dataclass(frozen=True)
class TextBlock:
    lines: tuple[TextLine, ...]
    corner: Corner
    size: float = 1.0  # relative to the style's text height (side markers are larger)


@dataclass(frozen=True)
class TextStyle:
    font: int
    height: int  # cap height in pixels
    thickness: int
    antialiased: bool
    ink: Ink


@dataclass(frozen=True)
class PlacedWord:
    text: str
    category: str
    is_phi: bool
    bbox: tuple[int, int, int, int]  # x1, y1, x2, y2, inclusive


@dataclass(frozen=True)
class PlacedLine:
    words: tuple[PlacedWord, ...]

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    @property
    def is_phi(self) -> bool:
        return any(word.is_phi for word in self.words)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        boxes = np.array([word.bbox for word in self.words])
        return (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()),
                int(boxes[:, 3].max()))


def burn(image: np.ndarray, spec: PixelSpec, blocks: tuple[TextBlock, ...], style: TextStyle,
         band_rows: int = 0) -> list[PlacedLine]:
    """Draw `blocks` into `image` (frames, rows, columns, samples; stored values, RGB for colour)
    in place. Blocks that do not fit or would overlap an earlier one are skipped."""
    palette = spec.photometric == "PALETTE COLOR"
    line_type = cv2.LINE_AA if style.antialiased and not palette else cv2.LINE_8
    spread = _value_spread(image[0])
    taken: list[tuple[int, int, int, int]] = []
    placed: list[PlacedLine] = []
    for block in blocks:
        layout = _layout(block, style, spec, band_rows)
        if layout is None or any(_overlap(layout.rect, rect) for rect in taken):
            continue
        taken.append(layout.rect)
        ink = _ink_value(image[0], layout.rect, style.ink, spec, spread)
        for line, (x, baseline) in zip(block.lines, layout.origins):
            if line.scale_bar_px:
                _draw_scale_bar(image, x, baseline, line.scale_bar_px, layout, ink, line_type)
                continue
            words = []
            for word in line.words:
                bbox = _draw_word(image, word.text, (x, baseline), layout, ink, line_type)
                if bbox is not None:
                    words.append(PlacedWord(word.text, word.category, word.is_phi, bbox))
                x += _text_width(word.text, layout) + layout.gap
            if words:
                placed.append(PlacedLine(tuple(words)))
    return placed


@dataclass(frozen=True)
class _Layout:
    scale: float
    font: int
    thickness: int
    cap: int
    gap: int
    rect: tuple[int, int, int, int]  # x1, y1, x2, y2 of the block
    origins: tuple[tuple[int, int], ...]  # per line: left x and baseline y


def _text_width(text: str, layout: _Layout) -> int:
    return cv2.getTextSize(text, layout.font, layout.scale, layout.thickness)[0][0]


def _layout(block: TextBlock, style: TextStyle, spec: PixelSpec, band_rows: int) -> _Layout | None:
    rows, columns = spec.rows, spec.columns
    margin = max(3, rows // 64)
    height = min(style.height * block.size, MAX_TEXT_HEIGHT)
    if block.corner is Corner.HEADER:
        height = min(height, (band_rows - 4) / 1.5)
    unit_cap = cv2.getTextSize("H", style.font, 1.0, style.thickness)[0][1]
    while height >= MIN_TEXT_HEIGHT:
        scale = height / unit_cap
        cap = cv2.getTextSize("H", style.font, scale, style.thickness)[0][1]
        descent = cv2.getTextSize("gy[]", style.font, scale, style.thickness)[1] + style.thickness
        gap = max(cv2.getTextSize(" ", style.font, scale, style.thickness)[0][0], cap // 2)
        pitch = round(cap * LINE_PITCH)
        widths = [
            line.scale_bar_px or sum(
                cv2.getTextSize(word.text, style.font, scale, style.thickness)[0][0]
                for word in line.words
            ) + gap * (len(line.words) - 1)
            for line in block.lines
        ]
        width, tall = max(widths), pitch * (len(block.lines) - 1) + cap + descent
        top_limit = band_rows + margin if block.corner is not Corner.HEADER else 0
        if width <= columns - 2 * margin and tall <= (rows - top_limit) // 2:
            left = margin if block.corner.value.endswith("left") or block.corner is Corner.HEADER \
                else columns - margin - width
            top = {
                Corner.TOP_LEFT: top_limit, Corner.TOP_RIGHT: top_limit,
                Corner.BOTTOM_LEFT: rows - margin - tall, Corner.BOTTOM_RIGHT: rows - margin - tall,
                Corner.MIDDLE_LEFT: (rows - tall) // 2, Corner.MIDDLE_RIGHT: (rows - tall) // 2,
                Corner.HEADER: max(0, (band_rows - tall) // 2),
            }[block.corner]
            right_aligned = block.corner.value.endswith("right")
            origins = tuple(
                (left + (width - line_width if right_aligned else 0), top + cap + i * pitch)
                for i, line_width in enumerate(widths)
            )
            return _Layout(scale, style.font, style.thickness, cap, gap,
                           (left, top, left + width, top + tall), origins)
        height *= 0.85
    return None


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return not (a[2] + BLOCK_GAP < b[0] or b[2] + BLOCK_GAP < a[0]
                or a[3] + BLOCK_GAP < b[1] or b[3] + BLOCK_GAP < a[1])


def _value_spread(frame: np.ndarray) -> float:
    low, high = np.percentile(frame[..., 0], (1, 99))
    return max(float(high - low), 1.0)


def _ink_value(frame: np.ndarray, rect: tuple[int, int, int, int], ink: Ink, spec: PixelSpec,
               spread: float) -> np.ndarray:
    """The sample values of the ink, one per sample of a pixel."""
    x1, y1, x2, y2 = rect
    local = float(np.median(frame[y1:y2 + 1, x1:x2 + 1].mean(axis=-1)))
    if spec.photometric == "PALETTE COLOR":
        if ink is Ink.LOW_CONTRAST:
            step = max(3, round(LOW_CONTRAST * GREY_ENTRIES))
            grey = local + step if local + step < GREY_ENTRIES else local - step
            return np.array([round(grey)])
        return np.array([PALETTE_YELLOW if ink is Ink.YELLOW else PALETTE_WHITE])
    low, high = spec.value_range
    if ink is Ink.LOW_CONTRAST:
        step = max(2, round(LOW_CONTRAST * spread))
        level = local + step if local + step <= high else local - step
        return np.full(spec.samples, round(level))
    if spec.samples == 3:
        return np.array([high, high, low if ink is Ink.YELLOW else high])
    level = high if ink is Ink.MAXIMUM else low
    if abs(level - local) < VISIBLE_CONTRAST * (high - low):
        level = low if level == high else high  # the extreme would vanish into its background
    return np.array([level])


def _draw_word(image: np.ndarray, text: str, origin: tuple[int, int], layout: _Layout,
               ink: np.ndarray, line_type: int) -> tuple[int, int, int, int] | None:
    (width, height), descent = cv2.getTextSize(text, layout.font, layout.scale, layout.thickness)
    pad = layout.thickness + 2
    canvas = np.zeros((height + descent + 2 * pad, width + 2 * pad), np.uint8)
    cv2.putText(canvas, text, (pad, pad + height), layout.font, layout.scale, 255,
                layout.thickness, line_type)
    return _apply(image, canvas, origin[0] - pad, origin[1] - height - pad, ink)


def _draw_scale_bar(image: np.ndarray, x: int, baseline: int, length: int, layout: _Layout,
                    ink: np.ndarray, line_type: int) -> None:
    tick = max(3, layout.cap // 2)
    canvas = np.zeros((tick + 4, length + 4), np.uint8)
    cv2.line(canvas, (2, tick + 1), (length + 1, tick + 1), 255, 1, line_type)
    for end in (2, length + 1):
        cv2.line(canvas, (end, 1), (end, tick + 1), 255, 1, line_type)
    _apply(image, canvas, x - 2, baseline - tick - 1, ink)


def _apply(image: np.ndarray, canvas: np.ndarray, left: int, top: int,
           ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """Blend `canvas` (coverage 0-255) into every frame at (left, top); the changed pixels' box."""
    rows, columns = image.shape[1:3]
    x1, y1 = max(left, 0), max(top, 0)
    x2, y2 = min(left + canvas.shape[1], columns), min(top + canvas.shape[0], rows)
    if x1 >= x2 or y1 >= y2:
        return None
    coverage = canvas[y1 - top:y2 - top, x1 - left:x2 - left].astype(np.float32) / 255
    region = image[:, y1:y2, x1:x2, :]
    blended = np.rint(region + coverage[None, :, :, None] * (ink - region)).astype(image.dtype)
    changed = (blended != region).any(axis=(0, 3))
    image[:, y1:y2, x1:x2, :] = blended
    if not changed.any():
        return None
    ys, xs = np.nonzero(changed)
    return x1 + int(xs.min()), y1 + int(ys.min()), x1 + int(xs.max()), y1 + int(ys.max())
