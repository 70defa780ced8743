"""Fitting detected text boxes to the ink they hold.

The detector's boxes are the text grown by about its height and the recogniser's word boxes
stray by a character or so; redacting them as they are blackens background around every word.
`fit_to_ink` shrinks a line box (and grows its word boxes) to the ink found in the image:
ink is what differs from the background above and below the line, or, where anatomy changes
across the line too, the strokes that stand out in the text's own polarity (lighter or darker
than what surrounds them).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Protocol, TypeVar

import cv2
import numpy as np

Box = tuple[int, int, int, int]


class _Word(Protocol):
    text: str
    box: Box


W = TypeVar("W", bound=_Word)

# Ink: pixels further from the background above and below the line than this share of the
# strongest difference in a word's window (anti-aliased rims included), and at least
# INK_MIN_LEVELS grey levels.
INK_SHARE, INK_MIN_LEVELS = 0.3, 12
# A word's band of ink rows is at least this share of the box's height (DB boxes are the text
# grown by about its height), else it is noise and the fit is not trusted.
BAND_MIN_SHARE = 0.25
# Rows of a line's ink band hold at least this share of the fullest row's ink pixels (a
# descender's tail is a few pixels under a row of a hundred).
INK_ROW_SHARE = 0.02
# A word's band found from the background above and below the line is trusted unless it is
# taller than this many times the band of its strokes (stroke_contrast): a row or so of rims
# and tails more is the faint ink the morphology misses; more than that is anatomy along the
# line (a bright edge above it, texture below) taken for ink.
STROKE_BAND_RATIO = 1.25
BAND_GROW = 2
BAND_MIN_LINE_SHARE = 0.7
# Faint ink: a pixel further from the background than the noise of the rows above and below
# the line (the 99th percentile of their differences, plus a level) and at least
# FAINT_MIN_LEVELS grey levels, the noise taken at most FAINT_CAP of the ink threshold (anatomy
# or a neighbour line in those rows does not make strokes pass for noise). A word's estimated
# span (the recogniser's character positions, which reach into the space after a narrow last
# letter) is cut back to its ink only over columns without any faint ink: what is fainter than
# the ink threshold but above the noise (rims, low-contrast strokes, texture) keeps it.
FAINT_MIN_LEVELS, FAINT_CAP = 3, 0.5
# Ink columns within a character of a word's estimated span join it across gaps of at most
# this share of its band's height (the space between letters); a wider gap is a word space.
LETTER_GAP_SHARE = 0.25


def fit_to_ink(image: np.ndarray, box: Box, words: list[W]) -> tuple[Box, list[W]]:
    """The line box and its word boxes fitted to the ink they hold in `image` (the view the
    line was read in). The detector's box is the text grown on every side by about its height
    (DB's unclip), and word boxes estimated from the recogniser's character positions stray by
    a character or so: redacting those would blacken background above and below every word,
    or miss the edge of one.

    Ink is what differs from the background above and below the line (the box's top and bottom
    rows, column by column: whatever its polarity, and anatomy changing along the line),
    measured word by word (anatomy beside one word does not hide the faint ink of the next).
    Where anatomy changes across the line as well (a bright edge along its top, textured tissue
    under dark text) that background is wrong: the word's band is then taken from its strokes
    instead, found in the text's own polarity (stroke_contrast), when the background's band is
    missing or more than STROKE_BAND_RATIO times taller. A
    word's rows are the band of rows with ink through the middle of the box (the detector
    centres its box on the text; a touching neighbour line falls outside the band); its
    estimated span grows to the runs of ink columns that reach into it, not beyond its
    neighbours' spans, and shrinks only over end columns without faint ink (_trimmed: ink
    fainter than the threshold may lie inside).
    Each word keeps its own rows (word_bands): one fitted too tall (anatomy along it) or a
    taller one ("[F]") does not make the whole line tall; a word that showed no band, or one
    much shorter than the line's (faint ascenders missed), gets the rows of the whole line;
    when no word showed a band, the line keeps its rows."""
    x1, y1, x2, y2 = box
    crop = image[y1:y2 + 1, x1:x2 + 1]
    rows, columns = crop.shape[:2]
    if rows < 3 or columns < 3 or not words:
        return box, words
    # Noise (speckle, an equalised view) hides the band in the pixels themselves: the ink is
    # sought again after a 3×3 median, which keeps strokes two pixels wide.
    differences = (difference_from_background(crop),
                   difference_from_background(cv2.medianBlur(np.ascontiguousarray(crop), 3)))
    strokes = stroke_contrast(crop)
    spans, bands = [], []
    for i, word in enumerate(words):
        left, right = word.box[0] - x1, word.box[2] - x1
        low = min(left, words[i - 1].box[2] - x1 + 1) if i else 0
        high = max(right, words[i + 1].box[0] - x1 - 1) if i + 1 < len(words) else columns - 1
        # Ink within a character of the estimate is the word's (the recogniser places a
        # character a little off its glyph, or drops one at a word's end).
        reach = math.ceil((right - left + 1) / max(len(word.text), 1))
        fit = None
        for difference in differences:
            fit = fit or ink_extent(difference[:, low:high + 1], left - low, right - low, reach)
        # The strokes' own band where the background's is missing or swollen by anatomy.
        stroke_fit = ink_extent(strokes[:, low:high + 1], left - low, right - low, reach)
        if stroke_fit is not None and (
                fit is None or _band_height(fit) > STROKE_BAND_RATIO * _band_height(stroke_fit)):
            fit = stroke_fit
        if fit is None:
            spans.append((left, right))
            bands.append(None)
            continue
        (a, b), (word_top, word_bottom) = fit
        # Grown to its ink; shrunk only over columns without faint ink (ink fainter than the
        # threshold, over bright anatomy, may lie inside the estimate).
        spans.append(_trimmed(differences[0], (word_top, word_bottom), low, high,
                              (min(left, low + a), max(right, low + b)), (low + a, low + b)))
        bands.append((word_top, word_bottom))
    own = bands
    bands = word_bands(bands, rows)
    # The rows a word's band was grown by (word_bands) are kept only down to its faint ink.
    bands = [_rows_to_faint(differences[0], band, found, span) if found is not None
             and band[0] >= found[0] - BAND_GROW and band[1] <= found[1] + BAND_GROW else band
             for band, found, span in zip(bands, own, spans)]
    fitted = [replace(w, box=(x1 + int(a), y1 + top, x1 + int(b), y1 + bottom))
              for w, (a, b), (top, bottom) in zip(words, spans, bands)]
    line = (x1 + int(min(a for a, _ in spans)), y1 + min(t for t, _ in bands),
            x1 + int(max(b for _, b in spans)), y1 + max(b for _, b in bands))
    return line, fitted


def _faint(difference: np.ndarray, low: int, high: int) -> np.ndarray:
    """The faint ink (and stronger) in a word's window, columns `low`..`high`. The ink
    threshold it takes a share of comes from the columns that do not differ in the outer rows
    too, where they hold any: anatomy crossing the line (a dark organ's edge under light text
    that a window saturates) may differ far more than the text, and would hide its faint ink."""
    window = difference[:, low:high + 1]
    outer = np.concatenate([window[:2], window[-2:]])
    noise = float(np.percentile(outer, 99)) + 1
    strongest = float(np.percentile(window, 99))
    quiet = window[:, outer.max(axis=0) < INK_MIN_LEVELS]
    if quiet.size:
        strongest = min(strongest, float(np.percentile(quiet, 99)))
    threshold = max(INK_MIN_LEVELS, INK_SHARE * strongest)
    return window >= max(FAINT_MIN_LEVELS, min(noise, FAINT_CAP * threshold))


def _trimmed(difference: np.ndarray, band: tuple[int, int], low: int, high: int,
             span: tuple[int, int], ink: tuple[int, int]) -> tuple[int, int]:
    """`span` (the estimate grown to the `ink` columns) without the columns at either end, in
    the word's window `low`..`high`, that hold no faint ink on the band's rows or the row
    beyond each side: background the estimate took in, nothing fainter than the ink there."""
    window = _faint(difference, low, high)
    top, bottom = max(0, band[0] - 1), min(len(window) - 1, band[1] + 1)
    faint = np.nonzero(window[top:bottom + 1].any(axis=0))[0] + low
    left = faint[(faint >= span[0]) & (faint <= ink[0])]
    right = faint[(faint >= ink[1]) & (faint <= span[1])]
    return (int(left[0]) if len(left) else ink[0], int(right[-1]) if len(right) else ink[1])


def _rows_to_faint(difference: np.ndarray, band: tuple[int, int], own: tuple[int, int],
                   span: tuple[int, int]) -> tuple[int, int]:
    """`band` (a word's `own` band grown towards the line's) without the grown rows at either
    side that hold no faint ink in the word's columns `span` (relative to the crop): a row
    beyond the ink holding nothing above the noise is background."""
    faint = _faint(difference, span[0], span[1]).any(axis=1)
    top, bottom = band
    while top < own[0] - 1 and not faint[top]:
        top += 1
    while bottom > own[1] + 1 and not faint[bottom]:
        bottom -= 1
    return top, bottom


def word_bands(bands: list[tuple[int, int] | None], rows: int) -> list[tuple[int, int]]:
    """Each word's rows, from the words' own fitted bands (None: no band found). The line's
    band is the union of the words' bands. A word keeps its own band, grown by at most
    BAND_GROW rows on each side towards the line's (ink fainter than the threshold at its
    rims): a word fitted too tall (anatomy along it taken for ink) or a taller one ("[F]", a
    descender) does not make every word of the line tall. A word whose band is missing or
    shorter than BAND_MIN_LINE_SHARE of the line's (faint ascenders over anatomy missed, only
    its lower-case middle found) gets the line's band. Without any band the words keep the
    box's rows."""
    found = [b for b in bands if b is not None]
    if not found:
        return [(0, rows - 1)] * len(bands)
    top, bottom = min(t for t, _ in found), max(b for _, b in found)
    out = []
    for band in bands:
        if band is None or band[1] - band[0] + 1 < BAND_MIN_LINE_SHARE * (bottom - top + 1):
            out.append((top, bottom))
        else:
            out.append((max(top, band[0] - BAND_GROW), min(bottom, band[1] + BAND_GROW)))
    return out


def difference_from_background(crop: np.ndarray) -> np.ndarray:
    """How far each pixel of a line's crop lies from the background column by column (anatomy
    under a line changes along it): the median of the box's top and bottom rows, then a running
    median along the line, about a line height wide, over which strokes of a touching
    neighbour line do not prevail."""
    rows, columns = crop.shape[:2]
    samples = crop.reshape(rows, columns, -1)
    edge = np.ascontiguousarray(np.median(np.concatenate([samples[:2], samples[-2:]]), axis=0)
                                .astype(np.uint8)[np.newaxis])
    width = min(columns - 1 + columns % 2, 2 * (rows // 2) + 1)
    background = cv2.medianBlur(edge, width) if width >= 3 else edge
    background = background.reshape(1, columns, -1).astype(np.int16)
    return np.abs(samples.astype(np.int16) - background).max(axis=2)


def _band_height(fit: tuple[tuple[int, int], tuple[int, int]]) -> int:
    return fit[1][1] - fit[1][0] + 1


def text_polarity(crop: np.ndarray) -> int:
    """+1 when the line's text is lighter than its background, -1 when darker. Column by
    column, ink reaches an extreme the rows above and below the text (the box's outer quarters)
    do not: the brightest of the middle rows above the brightest of the outer ones, or the
    darkest below the darkest. Summed over the columns where it does: anatomy beside the text
    (texture, an edge) reaches either extreme alike and drowns in the sum."""
    rows = crop.shape[0]
    grey = crop.reshape(rows, crop.shape[1], -1).astype(np.float32).mean(axis=2)
    quarter = max(1, rows // 4)
    middle = grey[quarter:rows - quarter]
    outer = np.concatenate([grey[:quarter], grey[rows - quarter:]])
    lighter = np.clip(middle.max(axis=0) - outer.max(axis=0), 0, None).sum()
    darker = np.clip(outer.min(axis=0) - middle.min(axis=0), 0, None).sum()
    return 1 if lighter >= darker else -1


def stroke_contrast(crop: np.ndarray) -> np.ndarray:
    """How far each pixel of a line's crop stands out from its surroundings in the text's
    polarity: a morphological top-hat (lighter text) or black-hat (darker text) with a square
    wider than a stroke, which takes the strokes and leaves anatomy smoother than they are, and
    whatever anatomy does above and below the line (a bright edge along it)."""
    rows, columns = crop.shape[:2]
    size = max(3, rows // 4) | 1
    kernel = np.ones((size, size), np.uint8)
    operation = cv2.MORPH_TOPHAT if text_polarity(crop) > 0 else cv2.MORPH_BLACKHAT
    samples = crop.reshape(rows, columns, -1)
    return np.max([cv2.morphologyEx(np.ascontiguousarray(samples[:, :, c]), operation, kernel)
                   for c in range(samples.shape[2])], axis=0).astype(np.int16)


def ink_extent(difference: np.ndarray, left: int, right: int, reach: int = 0
                ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Columns and rows of the ink in a word's window (`difference` from the background) that
    reaches into columns `left`..`right` through the window's middle row, with the runs within
    `reach` beyond them that a letter's gap joins (_chained); None when no ink does. Columns
    that differ from the background in the box's outer rows as well are
    structure crossing the line, not ink; a row holds ink when well above the noise left in
    the outer rows."""
    strongest = float(np.percentile(difference, 99))
    ink = difference >= max(INK_MIN_LEVELS, INK_SHARE * strongest)
    # A column that differs in the outer rows too is anatomy or an edge crossing the line.
    ink[:, np.count_nonzero(np.concatenate([ink[:2], ink[-2:]]), axis=0) >= 3] = False
    per_row = np.count_nonzero(ink, axis=1)
    middle = len(per_row) // 2
    # Noise: what passes the threshold in the rows above and below the text (the median: a
    # neighbour line may reach into one of them).
    noise = float(np.median(np.concatenate([per_row[:2], per_row[-2:]])))
    filled = per_row >= max(1.0, INK_ROW_SHARE * per_row.max(), 2 * noise + 1)
    if not filled[middle]:
        return None
    top, bottom = middle, middle
    while top > 0 and filled[top - 1]:
        top -= 1
    while bottom + 1 < len(filled) and filled[bottom + 1]:
        bottom += 1
    if bottom - top + 1 < BAND_MIN_SHARE * len(filled):
        return None
    # Descenders and ascenders: a few pixels a row, under the band's threshold, joined to it.
    tail_rows = (bottom - top + 1) // 2
    tails = per_row > noise
    low, high = max(0, top - tail_rows), min(len(filled) - 1, bottom + tail_rows)
    while top > low and tails[top - 1]:
        top -= 1
    while bottom < high and tails[bottom + 1]:
        bottom += 1
    edges = np.diff(np.concatenate([[0], ink[top:bottom + 1].any(axis=0).astype(np.int8), [0]]))
    runs = list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0] - 1))
    reached = _chained(runs, left, right, reach, LETTER_GAP_SHARE * (bottom - top + 1))
    if not reached:
        return None
    return (int(reached[0]), int(reached[1])), (top, bottom)


def _chained(runs: list[tuple[int, int]], left: int, right: int, reach: int,
             letter_gap: float) -> tuple[int, int] | None:
    """The columns of the ink runs that reach into `left`..`right`, joined by the runs within
    `reach` beyond it that lie at most `letter_gap` from them (a character the recogniser
    placed off its glyph or dropped at the word's end): the last letter of the word before,
    a word space away, is not the word's. Without a run in `left`..`right`, those within
    `reach` of it."""
    core = [(a, b) for a, b in runs if b >= left and a <= right]
    if not core:
        core = [(a, b) for a, b in runs if b >= left - reach and a <= right + reach]
        return (core[0][0], core[-1][1]) if core else None
    start, end = core[0][0], core[-1][1]
    for a, b in reversed([r for r in runs if r[1] < start and r[1] >= left - reach]):
        if start - b - 1 > letter_gap:
            break
        start = a
    for a, b in (r for r in runs if r[0] > end and r[0] <= right + reach):
        if a - end - 1 > letter_gap:
            break
        end = b
    return start, end
