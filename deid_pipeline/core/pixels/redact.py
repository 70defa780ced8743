"""Fill PHI boxes with a solid value that reads as black in the image's own photometric
interpretation, on every frame, and the rims of their ink in a margin around them with the
background, changing nothing else: rows, columns, bits, signedness and photometric
interpretation stay as they are."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut

from deid_pipeline.core.pixels.ocr import Box
from deid_pipeline.core.pixels.views import frame_count, samples_per_pixel

# Pixels added around each box. The OCR fits its boxes to the ink (rows to the band of ink
# rows, columns grown to the ink runs); the margin takes the anti-aliased rims fainter than its
# threshold. Across a line (above and below) the fit is exact to a pixel, each word to its own
# rows: at least MARGIN_ROWS and 1/MARGIN_ROWS_SHARE of the height. Along it the word's ends
# come from the recogniser's character positions: at least MARGIN and 1/MARGIN_SHARE of the
# height. Measured on the development and synthetic sets (benchmarks/bench_pixels.py): a
# quarter of the height all round hid 2-4 % of the pixels outside the text; an eighth all round
# 0.8-2 %; an eighth along and a twelfth across 0.5-1.3 %, a 24th across 0.45-1.1 % for the
# same recall (a pixel less along the line, or none across, lost some).
MARGIN, MARGIN_SHARE = 2, 8
MARGIN_ROWS, MARGIN_ROWS_SHARE = 1, 24
# Most of a margin is background: it is filled only where it stands out from the ring of RING
# pixels around it (_rims), and with that ring's median, so that a stroke there vanishes in
# either polarity. Filling the whole margin changed 0.4-0.8 % of the pixels outside the text;
# this, 0.2-0.5 %, with the same words hidden and nothing more read in them by the OCR, even
# with every box 2 pixels short at both ends (bench_pixels.py, dev and synth).
RING, RIM_SPREADS, RIM_INK_SHARE = 2, 3.0, 0.5


def black_value(pixels: np.ndarray, ds: Dataset) -> int | tuple[int, ...]:
    """The value that shows as black: the darkest value present for greyscale (the background
    the image already has), the darkest palette entry, zero for colour decoded as RGB."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "MONOCHROME1":
        return int(pixels.max())
    if photometric == "PALETTE COLOR":
        entries = np.arange(int(pixels.max()) + 1, dtype=pixels.dtype)
        colours = apply_color_lut(entries, ds).astype(np.float64)
        luminance = colours @ np.array([0.299, 0.587, 0.114])
        return int(np.argmin(luminance))
    if samples_per_pixel(ds) > 1:
        return (0,) * samples_per_pixel(ds)
    return int(pixels.min())


def padded(box: Box, rows: int, columns: int, margin: int | None = None) -> Box:
    """The box grown by `margin` on every side, by default MARGIN / MARGIN_SHARE of its height
    along the line (left and right) and MARGIN_ROWS / MARGIN_ROWS_SHARE across it (above and
    below): larger text has wider rims. Fixed zones are grown alike."""
    x1, y1, x2, y2 = box
    height = y2 - y1 + 1
    if margin is None:
        along, across = (max(MARGIN, height // MARGIN_SHARE),
                         max(MARGIN_ROWS, height // MARGIN_ROWS_SHARE))
    else:
        along = across = margin
    return (max(0, x1 - along), max(0, y1 - across),
            min(columns - 1, x2 + along), min(rows - 1, y2 + across))


def fill_boxes(pixels: np.ndarray, ds: Dataset, boxes: Iterable[Box]) -> np.ndarray:
    """A copy of `pixels` (pydicom's pixel_array shape) with every box filled on every frame,
    and the pixels of its margin (padded) that stand out from the background around it, frame
    by frame, set to that background (_rims)."""
    out = pixels.copy()
    value = black_value(pixels, ds)
    rows, columns = int(ds.Rows), int(ds.Columns)
    boxes = list(boxes)
    source = pixels if frame_count(pixels, ds) > 1 else pixels[np.newaxis]
    frames = out if frame_count(out, ds) > 1 else out[np.newaxis]
    for box in boxes:
        x1, y1, x2, y2 = padded(box, rows, columns)
        rims = _rims(source, box, (x1, y1, x2, y2), rows, columns)
        if rims is None:
            frames[:, y1:y2 + 1, x1:x2 + 1] = value
            continue
        background, standing_out = rims
        frames[:, y1:y2 + 1, x1:x2 + 1][standing_out] = background[np.nonzero(standing_out)[0]]
    # The boxes themselves after every margin: a neighbour's margin must not bring back ink.
    for x1, y1, x2, y2 in boxes:
        frames[:, max(y1, 0):y2 + 1, max(x1, 0):x2 + 1] = value
    return out


def _rims(source: np.ndarray, box: Box, margin: Box, rows: int, columns: int
          ) -> tuple[np.ndarray, np.ndarray] | None:
    """Per frame, the background around `margin` (`box` padded) and the mask of the margin's
    pixels that stand out from it: by more than RIM_SPREADS of its spread, or than
    RIM_INK_SHARE of how far the box's own ink stands out (its 99th percentile), whichever is
    less. The second holds over noise the text barely clears (a scout's text at an extreme
    over speckle): a letter the fit cut short stands out from the noise by no more than the
    ink in the box. None when no background shows around the margin (the whole frame)."""
    x1, y1, x2, y2 = margin
    ox1, oy1 = max(0, x1 - RING), max(0, y1 - RING)
    ox2, oy2 = min(columns - 1, x2 + RING), min(rows - 1, y2 + RING)
    outer = source[:, oy1:oy2 + 1, ox1:ox2 + 1]
    ring = np.ones(outer.shape[1:3], bool)
    ring[y1 - oy1:y2 - oy1 + 1, x1 - ox1:x2 - ox1 + 1] = False
    if not ring.any():
        return None
    samples = outer[:, ring].astype(np.float64)  # frames, ring pixels[, channels]
    background = np.median(samples, axis=1)
    spread = 1.4826 * np.median(np.abs(samples - background[:, None]), axis=1)
    inner = source[:, y1:y2 + 1, x1:x2 + 1].astype(np.float64)
    shape = (len(source), 1, 1) + inner.shape[3:]
    deviation = np.abs(inner - background.reshape(shape))
    if deviation.ndim == 4:
        deviation, spread = deviation.max(axis=-1), spread.max(axis=-1)
    inside = deviation[:, max(box[1] - y1, 0):box[3] - y1 + 1, max(box[0] - x1, 0):box[2] - x1 + 1]
    ink = (np.percentile(inside.reshape(len(source), -1), 99, axis=1) if inside.size
           else np.full(len(source), np.inf))
    threshold = np.minimum(RIM_SPREADS * spread, RIM_INK_SHARE * ink)
    standing_out = deviation > threshold[:, None, None]
    return np.rint(background).astype(source.dtype), standing_out
