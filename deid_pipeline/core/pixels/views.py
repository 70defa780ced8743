"""8-bit reading views of a DICOM frame, on which burned-in text is legible for the OCR.

A frame comes as pydicom's ``pixel_array`` gives it: stored values, (rows, columns) for one
sample per pixel, (rows, columns, 3) for colour. Burned-in text is drawn by a modality, a
workstation or a PACS at some value of its choosing — most often the largest or smallest value
the pixel can hold, sometimes a grey a few percent off the background — and it must be legible
whatever the data: 8–16 bits, signed, a stored window that hides it or shows it, anatomy under
it. Each view searched costs one pass of the text detector, so `reading_views` returns as few as
it can, in order of preference for reading a line found in several:

``full``
    Linear, frame minimum to maximum, read but not searched: a line found in another view and
    read unsurely there is read here too (without the equalisation's noise).
``window``
    The stored VOI window (or VOI LUT), as a reader would have seen the image; text drawn to be
    legible on the display is legible here even when outliers squash it in ``full``. Only when it
    zooms in (at least 1.4× the contrast of ``full``), differs from ``full`` and does not leave
    nearly everything black or white (a 16-bit window stored with 8-bit data).
``robust``
    Without any stored window: the 0.5–99.5 percentile range, for frames whose full range is
    stretched by a few outliers (metal, padding, a marker at the maximum) so that the rest,
    including grey text, falls within a few grey levels. Under the same conditions.
``extremes``
    Pixels at (or within a hair of) the frame's maximum white on black, or those at its minimum
    black on white (both on mid-grey when both are needed): text drawn at an extreme over bright
    (or dark) anatomy, or over speckle, which is faint or busy in ``full``, stands out clean.
    Only when strokes drawn at that extreme are, in ``full``, in places set against
    surroundings on their side of mid-grey.
``levels``
    White on black, the pixels at each of a few frequent inner values (neither extreme; counted
    where a pixel equals two of its neighbours, as strokes drawn at one value do and noise of
    nearly that value does not) that are drawn as strokes: a banner burned in at one grey of
    its own, brighter than the black around the body and darker than the body it runs into,
    which no window sets apart. Only for integer data, and only when such strokes exist
    (anatomy spreads over many values).
``local``
    Contrast-limited adaptive histogram equalisation of the full range (``full``), the view the
    detector always searches on grey frames: text at either extreme stays the brightest or
    darkest thing around it, and grey text a few percent off its surroundings (over anatomy, on
    a noisy background) comes up to a contrast the detector sees, which in ``full`` it does not.
``background``
    The frame windowed onto its darkest background (from one noise spread below the
    background's median to four above), its noise then smoothed by non-local means, which
    averages like with like and so leaves strokes sharp: text a few noise spreads above MR air,
    in characters of 7-9 pixels with one-pixel strokes, which equalising leaves drowned in the
    noise and plain smoothing blurs away. Only for noisy frames (most pixels off the median
    around them) whose background is noisy dark air, that window within the darkest fifth of
    the range.
``quiet``
    On other noisy frames (a grey or bright background: a secondary capture's), ``full``
    smoothed over a pixel or so, then equalised as ``local`` but harder: text a few percent off
    the background that the noise drowns in ``local``. A fallback: its text counts only where
    no other view found any, since the smoothing blurs the edges of what the others read
    sharply; its lines are fitted to the ink of ``local``.

Colour frames (RGB, YBR converted to RGB, PALETTE COLOR through its lookup table) give one
``color`` view (BGR, the detector's order), when the picture is not grey a ``gray`` view of the
brightest channel, in which coloured text on grey anatomy is plain white-on-grey, and a
``local`` view of that channel when some flat part of it carries faint marks (an ultrasound
header band), and a ``detail`` view of it (each pixel's difference from the median around it,
amplified) when marks a few levels off a flat background hold enough pixels to be text: small
header text a few percent above its band, which equalisation leaves faint; the bands of rows
where those marks run as small text are searched again, cropped (``detail-band``, a fallback),
which the detector enlarges. A colour frame whose
channels agree everywhere (a grey picture stored as colour) gets the grey views of that channel
besides, without any stored window.

MONOCHROME1 is inverted so that every view reads the way the image is displayed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, convert_color_space

from deid_pipeline.core.transcode import LOSSY_SYNTAXES

# pydicom 3's default pixel_array already converts these to RGB (as_rgb=True; the JPEG 2000
# decoder undoes the ICT/RCT transforms itself).
PYDICOM_CONVERTS_TO_RGB = frozenset({"YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})

# A candidate window whose mean absolute difference from the full range or a window already
# chosen is below this (grey levels, on a subsample) shows nothing new and costs a detector
# pass: it is dropped.
MIN_VIEW_DIFFERENCE = 12.0
# A stored window (or the robust range) is read only when it shows the values it spans with at
# least this many times the contrast of the full range.
MIN_WINDOW_GAIN = 1.4
# A window under which 99 % of the pixels span fewer grey levels than this shows nothing (e.g. a
# 16-bit window over 8-bit data).
MIN_WINDOW_SPREAD = 32
ROBUST_PERCENTILES = (0.5, 99.5)
# Extremes: values within this fraction of the range from the maximum (minimum) count as drawn
# at it (anti-aliasing and lossy compression move text off the exact value).
EXTREME_TOLERANCE = 0.01
# Lossy coding (JPEG's ringing, JPEG 2000's quantisation) moves text drawn at an extreme further:
# on the development set coded as JPEG at quality 90 and as JPEG 2000 at 45 dB, 0.03 read 1 and
# 3 more of the 161 PHI words than 0.01 (0.06 no more); on the uncoded images it read 1 fewer.
LOSSY_EXTREME_TOLERANCE = 0.03
# Text at an extreme covers a small part of a frame; more than this is background or saturated
# anatomy, and text over it cannot be told apart at any view.
EXTREME_MAX_FRACTION = 0.2
EXTREME_MIN_PIXELS = 12
# In the full view, text at an extreme is legible when fewer than this fraction of the pixels
# around it lie on its side of mid-grey.
EXTREME_CLOSE_FRACTION = 0.4
# Inner values looked at for the levels view: the most frequent few of those at least
# LEVEL_SPIKE times as frequent as the median of the values within LEVEL_NEIGHBOURS of them
# (a median: text is often drawn in two greys a level or two apart), each with enough pixels to
# draw a word, most of them in strokes; data of a range up to LEVEL_MAX_RANGE.
LEVEL_CANDIDATES, LEVEL_MIN_PIXELS, LEVEL_STROKE_SHARE = 4, 150, 0.6
LEVEL_SPIKE, LEVEL_NEIGHBOURS, LEVEL_MAX_RANGE = 4, 3, 1 << 17
SUBSAMPLE = 4  # statistics on every 4th row and column
# Local-contrast view: CLAHE settings, and when a colour frame's brightest channel needs it: at
# least FAINT_MIN_TILES tiles of
# FAINT_TILE² pixels whose bulk is flat (10th to 90th percentile within FAINT_FLAT_LEVELS grey
# levels) while a few pixels lie FAINT_MARK_LEVELS (low, high) beyond it, with no tile spanning
# more than FAINT_BUSY_LEVELS next to them. (Grey frames always have it.)
LOCAL_CLIP_LIMIT, LOCAL_GRID = 2.0, (8, 8)
# Background view: the darkest BACKGROUND_SHARE % of the frame (by the mean over 5 × 5 pixels,
# so that the noise of the background is not cut off) is its background; its median and spread
# (1.4826 × the median absolute deviation, the standard deviation of Gaussian noise) set the
# window BACKGROUND_WINDOW spreads (below, above) around the median, and non-local means smooths
# with a strength of BACKGROUND_DENOISE spreads.
BACKGROUND_SHARE, BACKGROUND_WINDOW, BACKGROUND_DENOISE = 25, (1, 4), 0.8
# ... only where that window lies in the darkest 1 / BACKGROUND_MIN_GAIN of the frame's range:
# a background of dark air far below the anatomy (a grey or bright one, or one whose noise spans
# much of the range, is as legible in `local`).
BACKGROUND_MIN_GAIN = 5
# Quiet view, where the background view is not made: the full range smoothed (Gaussian,
# QUIET_SIGMA pixels) before equalising with a higher clip limit, for text a few percent off a
# noisy grey or bright background that equalising the noise itself drowns.
QUIET_SIGMA, QUIET_CLIP_LIMIT = 0.8, 4.0
# Both only for noisy frames: the median pixel at least this many grey levels (of `full`) off
# the median of the 3 × 3 around it (a clean background, even under anatomy, leaves most at 0).
NOISY_MIN_LEVELS = 1
FAINT_TILE, FAINT_FLAT_LEVELS, FAINT_MARK_LEVELS, FAINT_MIN_TILES = 16, 8, (6, 64), 3
FAINT_BUSY_LEVELS = 16
# Detail view of a colour frame: the median over DETAIL_KERNEL² pixels is the background; marks
# DETAIL_MARK_LEVELS off it (grey levels) on a background whose range over DETAIL_FLAT_KERNEL²
# pixels is within DETAIL_FLAT_LEVELS, at least DETAIL_MIN_PIXELS of them (a few characters'
# strokes), call for it; the difference is amplified DETAIL_GAIN times.
DETAIL_KERNEL, DETAIL_GAIN = 15, 6
DETAIL_FLAT_KERNEL, DETAIL_FLAT_LEVELS, DETAIL_MARK_LEVELS, DETAIL_MIN_PIXELS = 5, 2, (4, 64), 40
# Small text in the detail view: bands of rows with BAND_MIN_MARKS marks or more (gaps of
# BAND_GAP rows bridged), as tall as one to three lines of characters up to 8 pixels high.
BAND_MIN_MARKS, BAND_GAP, BAND_HEIGHTS, BAND_COUNT, BAND_FLAT_SHARE = 3, 2, (3, 24), 3, 0.8
BAND_PAD = 8  # rows of context above and below at least (the detector sees text in its band)
# A colour frame whose channels nowhere differ by more than this (rounding in a YBR
# conversion) holds a grey picture.
GREY_IN_COLOUR_LEVELS = 2


@dataclass(frozen=True, eq=False)
class View:
    """One 8-bit image for the OCR: (rows, columns) grey or (rows, columns, 3) BGR, in the
    frame's pixel coordinates. `detect`: searched for text (else only read where another view
    found it); `reread`: a line read unsurely in another view is read here too (an equalised
    view misreads busy surroundings confidently: it is read only where it found the line);
    `fallback`: its text counts only where no other view found any (a smoothed view finds
    faint text in noise, and blurs the edges of what the others read sharply)."""

    name: str
    image: np.ndarray
    detect: bool = True
    reread: bool = True
    fallback: bool = False
    rows: tuple[int, int] | None = None  # searched only in these rows (first, last)
    fit_in: str | None = None  # the view whose ink its lines are fitted to, when not itself


@dataclass(frozen=True, eq=False)
class DistinctFrame:
    """A frame to read, and every frame index holding the same pixels (`index` first)."""

    index: int
    pixels: np.ndarray
    indices: tuple[int, ...]


def samples_per_pixel(ds: Dataset) -> int:
    return int(ds.get("SamplesPerPixel", 1) or 1)


def frame_count(pixels: np.ndarray, ds: Dataset) -> int:
    """Frames in `pixels` (pydicom drops the frame axis of a single-frame image)."""
    frame_ndim = 2 if samples_per_pixel(ds) == 1 else 3
    if pixels.ndim == frame_ndim:
        return 1
    if pixels.ndim == frame_ndim + 1:
        return int(pixels.shape[0])
    raise ValueError(
        f"pixel array of shape {pixels.shape} does not fit SamplesPerPixel "
        f"{samples_per_pixel(ds)}"
    )


def frames_to_read(pixels: np.ndarray, ds: Dataset) -> Iterator[DistinctFrame]:
    """The distinct frames of `pixels`, in order of first appearance; identical frames (same
    bytes) are read once and listed in `indices` of the first."""
    count = frame_count(pixels, ds)
    if count == 1:
        frames = [pixels if pixels.ndim == (2 if samples_per_pixel(ds) == 1 else 3) else pixels[0]]
    else:
        frames = [pixels[i] for i in range(count)]
    groups: dict[bytes, list[int]] = {}
    for i, frame in enumerate(frames):
        digest = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16)
        digest.update(repr((frame.shape, frame.dtype.str)).encode())
        groups.setdefault(digest.digest(), []).append(i)
    for indices in groups.values():
        yield DistinctFrame(indices[0], frames[indices[0]], tuple(indices))


def reading_views(pixels: np.ndarray, ds: Dataset, *, pixels_color_space: str | None = None,
                  names: tuple[str, ...] | None = None) -> list[View]:
    """8-bit views of one frame on which burned-in text is legible, most useful first.

    `pixels` is one frame as pydicom's ``pixel_array`` gives it. `pixels_color_space` says what
    colour space a three-sample frame is in when it is not what pydicom 3's default decoding
    gives (RGB for YBR_FULL, YBR_FULL_422, YBR_ICT and YBR_RCT): pass the dataset's
    Photometric Interpretation when the frame was decoded with ``as_rgb=False``. `names`
    restricts the views to those named (evaluation and tests); a flat frame gives no view.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    tolerance = LOSSY_EXTREME_TOLERANCE if _lossy(ds) else EXTREME_TOLERANCE
    if photometric == "PALETTE COLOR" and pixels.ndim == 2:
        views = _color_views(_palette_to_rgb8(pixels, ds), tolerance)
    elif pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        space = (pixels_color_space or (
            "RGB" if photometric in PYDICOM_CONVERTS_TO_RGB else photometric)).upper()
        views = _color_views(_to_rgb8(pixels[..., :3], space, ds), tolerance)
    elif pixels.ndim == 2:
        views = _grey_views(pixels, ds, photometric == "MONOCHROME1", tolerance)
    else:
        raise ValueError(f"not a single frame: shape {pixels.shape}")
    if names is not None:
        views = [view for view in views if view.name in names]
    return views


# --- grey -----------------------------------------------------------------------------------


def _lossy(ds: Dataset) -> bool:
    """Whether the pixels have been through lossy compression, now or before (PS3.3
    C.7.6.1.1.5)."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return str(ds.get("LossyImageCompression", "")).strip() == "01" or syntax in LOSSY_SYNTAXES


def _grey_views(pixels: np.ndarray, ds: Dataset, invert: bool, tolerance: float) -> list[View]:
    """`tolerance`: the share of the range within which a value counts as at an extreme."""
    values = _opencv_compatible(pixels)
    low, high = _min_max(values)
    if high <= low:
        return []
    chosen: list[View] = []
    full = _scale(values, low, high)  # before any inversion
    shown = [full]  # what the views show, before inversion

    def add(name: str, image: np.ndarray | None, compare: bool = False, detect: bool = True,
            reread: bool = True, fallback: bool = False, fit_in: str | None = None) -> None:
        """Keep `image`; a window (`compare`) only if it differs from what the views show."""
        if image is None:
            return
        if compare and any(_difference(image, seen) < MIN_VIEW_DIFFERENCE for seen in shown):
            return
        if compare:
            shown.append(image)
        chosen.append(View(name, 255 - image if invert else image, detect, reread, fallback,
                           fit_in=fit_in))

    add("full", full, detect=False)
    window = _stored_window(values, ds, (high - low) / MIN_WINDOW_GAIN)
    if window is not None:
        add("window", window, compare=True)
    elif "WindowWidth" not in ds and "VOILUTSequence" not in ds:
        sample = values[::SUBSAMPLE, ::SUBSAMPLE]
        p_low, p_high = (float(p) for p in np.percentile(sample, ROBUST_PERCENTILES))
        if 0 < p_high - p_low <= (high - low) / MIN_WINDOW_GAIN:
            add("robust", _scale(values, p_low, p_high), compare=True)
    add("extremes", _extremes(values, low, high, full, tolerance))
    add("levels", _levels(values, low, high, tolerance))
    add("local", _local_contrast(full), reread=False)
    if _noise(full) >= NOISY_MIN_LEVELS:
        background = _denoised_background(values, low, high)
        if background is not None:
            add("background", background, reread=False)
        else:  # fitted to the ink of the unsmoothed view: the smoothing spreads strokes
            add("quiet", _quiet(full), reread=False, fallback=True, fit_in="local")
    return chosen


def _opencv_compatible(pixels: np.ndarray) -> np.ndarray:
    """`pixels` in a dtype OpenCV computes with (8/16-bit integers, int32, floats)."""
    if pixels.dtype.type in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32,
                             np.float64):
        return np.ascontiguousarray(pixels)
    return pixels.astype(np.float64)


def _min_max(values: np.ndarray) -> tuple[float, float]:
    if values.dtype.type is np.int8 or values.ndim != 2:
        return float(values.min()), float(values.max())
    low, high, _, _ = cv2.minMaxLoc(values)
    return float(low), float(high)


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linear map of [low, high] onto 0..255 (rounded, clipped), from any OpenCV-compatible
    dtype without a float copy."""
    floor = _min_max(values)[0]
    if low > floor:
        if low >= _min_max(values)[1]:
            return np.zeros(values.shape, np.uint8)
        values = np.maximum(values, np.asarray(math.ceil(low), dtype=values.dtype))
    alpha = 255.0 / (high - low)
    # convertScaleAbs saturates at 255 and rounds; inputs are >= low, so no sign flip.
    return cv2.convertScaleAbs(values, alpha=alpha, beta=-low * alpha)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    sa = a[::SUBSAMPLE, ::SUBSAMPLE].astype(np.int16)
    sb = b[::SUBSAMPLE, ::SUBSAMPLE].astype(np.int16)
    return float(np.abs(sa - sb).mean())


def _first(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(
                value, (str, bytes)):
            value = value[0]  # type: ignore[index]
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, IndexError):
        return None


def _stored_window(values: np.ndarray, ds: Dataset, max_width: float) -> np.ndarray | None:
    """The stored VOI window (or VOI LUT) applied to `values` (stored values), or None when
    there is none, when the window is wider than `max_width` stored values (no more contrast
    than the full range) or when it leaves nearly every pixel black or white."""
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    image = None
    if center is not None and width is not None and width >= 1:
        slope = _first(ds.get("RescaleSlope")) or 1.0
        intercept = _first(ds.get("RescaleIntercept")) or 0.0
        if str(ds.get("VOILUTFunction", "LINEAR")).upper() == "LINEAR_EXACT":
            out_low, out_high = center - width / 2, center + width / 2
        else:  # LINEAR, and SIGMOID approximated by its linear part
            out_low = center - 0.5 - (width - 1) / 2
            out_high = center - 0.5 + (width - 1) / 2
        low, high = sorted(((out_low - intercept) / slope, (out_high - intercept) / slope))
        if 0 < high - low <= max_width:
            image = _scale(values, low, high)
            if slope < 0:
                image = 255 - image
    elif "VOILUTSequence" in ds:
        image = _voi_lut(values, ds)
    if image is None:
        return None
    sample = image[::SUBSAMPLE, ::SUBSAMPLE]
    low, high = np.percentile(sample, (0.5, 99.5))
    return image if high - low >= MIN_WINDOW_SPREAD else None


def _voi_lut(values: np.ndarray, ds: Dataset) -> np.ndarray | None:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        item = ds.VOILUTSequence[0]
        bits = int(item.LUTDescriptor[2])
        out = apply_voi_lut(apply_modality_lut(values, ds), ds, prefer_lut=True)
        return _scale(np.asarray(out, dtype=np.float32), 0.0, float(2**bits - 1))
    except Exception:  # noqa: BLE001 - a malformed LUT only costs this view
        return None


def _extremes(values: np.ndarray, low: float, high: float, full: np.ndarray,
              tolerance: float) -> np.ndarray | None:
    """The pixels at the frame's maximum (white) and minimum (black) on a plain background, or
    None when no extreme looks like text that `full` does not already show. Only the extremes
    that need it are drawn: white on black, black on white, or both on mid-grey."""
    tolerance *= high - low
    inks = []
    for mask, ink in ((values >= high - tolerance, 255), (values <= low + tolerance, 0)):
        count = int(np.count_nonzero(mask))
        if EXTREME_MIN_PIXELS <= count <= EXTREME_MAX_FRACTION * values.size \
                and not _legible_in_full(mask, full, ink):
            inks.append((mask, ink))
    if not inks:
        return None
    image = np.full(values.shape, 128 if len(inks) == 2 else 255 - inks[0][1], np.uint8)
    for mask, ink in inks:
        image[mask] = ink
    return image


def _levels(values: np.ndarray, low: float, high: float, tolerance: float) -> np.ndarray | None:
    """White on black, the pixels at each single inner value that is drawn as strokes: text
    burned in at one grey of its own (mid-grey over bright anatomy, dark grey on black), which
    no window sets apart from what lies around it. None when no such value exists.

    Text drawn at one value is a spike in the histogram, many times as frequent as the values
    beside it; anatomy and noise spread over neighbouring values. Only integer data of a range
    that can be counted value by value has such spikes worth looking for."""
    if values.dtype.kind not in "iu" or values.ndim != 2 or high - low >= LEVEL_MAX_RANGE:
        return None
    # Counted only where a pixel equals two of its four neighbours: strokes drawn at one value
    # do, noise around them hardly ever (over a noisy background of the same grey the text's
    # value is no spike among all pixels).
    equal = _equal_neighbours(values)
    counts = np.bincount(values[equal >= 2].astype(np.intp) - int(low),
                         minlength=int(high - low) + 1)
    margin = math.ceil(tolerance * (high - low)) + 1
    frequent = (counts >= LEVEL_MIN_PIXELS) & (counts <= EXTREME_MAX_FRACTION * values.size)
    frequent[:margin] = frequent[-margin:] = False  # the extremes have a view of their own
    offsets = np.flatnonzero(frequent)
    if not offsets.size:
        return None
    reach = LEVEL_NEIGHBOURS
    shifts = np.array([shift for shift in range(-reach, reach + 1) if shift]) + reach
    beside = np.median(np.pad(counts, reach)[offsets[:, None] + shifts], axis=1)
    spikes = offsets[counts[offsets] >= LEVEL_SPIKE * beside]
    image = None
    for offset in spikes[np.argsort(counts[spikes])[::-1][:LEVEL_CANDIDATES]]:
        mask = (values == values.dtype.type(offset + int(low))) & (equal > 0)
        strokes = _glyphs(mask)
        if np.count_nonzero(strokes) < LEVEL_STROKE_SHARE * np.count_nonzero(mask):
            continue  # a flat region or scattered noise at that value, not strokes
        if image is None:
            image = np.zeros(values.shape, np.uint8)
        image[mask] = 255
    return image


def _equal_neighbours(values: np.ndarray) -> np.ndarray:
    """How many of each pixel's four neighbours hold its value."""
    count = np.zeros(values.shape, np.uint8)
    count[:, 1:] += values[:, 1:] == values[:, :-1]
    count[:, :-1] += values[:, :-1] == values[:, 1:]
    count[1:] += values[1:] == values[:-1]
    count[:-1] += values[:-1] == values[1:]
    return count


def _glyphs(mask: np.ndarray) -> np.ndarray:
    """The parts of `mask` drawn as strokes: pixels with at least two neighbours in the mask
    (not isolated noise) outside solid regions (anything five pixels thick, and a margin)."""
    mask8 = mask.astype(np.uint8)
    neighbours = cv2.boxFilter(mask8, -1, (3, 3), normalize=False)
    solid = cv2.dilate(cv2.erode(mask8, np.ones((5, 5), np.uint8)), np.ones((7, 7), np.uint8))
    return (neighbours >= 3) & (mask8 > 0) & (solid == 0)


def _legible_in_full(mask: np.ndarray, full: np.ndarray, ink: int) -> bool:
    """Whether the stroke-shaped parts of `mask` (drawn at `ink`, 255 or 0, in `full`) stand
    out from their surroundings in `full` everywhere: in the ring two to three pixels around
    them, hardly any pixel lies on the ink's side of mid-grey (bright anatomy under white text,
    dark speckle around black text)."""
    mask8 = _glyphs(mask).astype(np.uint8)
    if np.count_nonzero(mask8) < EXTREME_MIN_PIXELS:
        return True
    near = cv2.dilate(mask8, np.ones((3, 3), np.uint8))
    far = cv2.dilate(mask8, np.ones((7, 7), np.uint8))
    ring = full[(far > 0) & (near == 0)]
    if ring.size == 0:
        return True
    close = np.count_nonzero(ring >= 128) if ink == 255 else np.count_nonzero(ring < 128)
    return close < EXTREME_CLOSE_FRACTION * ring.size


def _local_contrast(image: np.ndarray) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation: faint marks on a flat background come
    up to full contrast, busy anatomy only by the clip limit."""
    return cv2.createCLAHE(clipLimit=LOCAL_CLIP_LIMIT, tileGridSize=LOCAL_GRID).apply(image)


def _noise(image: np.ndarray) -> float:
    """The median difference of a pixel from the median of the 3 × 3 around it."""
    difference = cv2.absdiff(image, cv2.medianBlur(image, 3))
    return float(np.median(difference[::SUBSAMPLE // 2, ::SUBSAMPLE // 2]))


def _quiet(image: np.ndarray) -> np.ndarray:
    """`image` smoothed, then equalised: faint marks in noise come up, the noise does not."""
    smooth = cv2.GaussianBlur(image, (0, 0), QUIET_SIGMA)
    return cv2.createCLAHE(clipLimit=QUIET_CLIP_LIMIT, tileGridSize=LOCAL_GRID).apply(smooth)


def _denoised_background(values: np.ndarray, low: float, high: float) -> np.ndarray | None:
    """`values` (from `low` to `high`) windowed onto the frame's darkest background, its noise
    smoothed; None when that background has no noise or is no dark air."""
    sample = values[::2, ::2]
    mean = cv2.blur(sample.astype(np.float32), (5, 5))
    darkest = sample[mean <= np.percentile(mean, BACKGROUND_SHARE)].astype(np.float64)
    level = float(np.median(darkest))
    spread = 1.4826 * float(np.median(np.abs(darkest - level)))
    below, above = BACKGROUND_WINDOW
    if spread <= 0 or level + above * spread > low + (high - low) / BACKGROUND_MIN_GAIN:
        return None
    image = _scale(values, level - below * spread, level + above * spread)
    strength = BACKGROUND_DENOISE * 255 / (below + above)  # a spread in grey levels of `image`
    return cv2.fastNlMeansDenoising(image, None, h=strength, templateWindowSize=5,
                                    searchWindowSize=15)


def _has_faint_marks(full: np.ndarray) -> bool:
    """Whether some tiles of `full` are a flat background carrying faint marks: the bulk of the
    tile within a few grey levels, a few pixels a step (a little, not far) beyond it, and no busy
    tile (anatomy, whose edges fade the same way) next to it."""
    sample = full[::2, ::2]  # tiles of FAINT_TILE² pixels, sampled on every other row/column
    size = FAINT_TILE // 2
    rows, columns = sample.shape[0] // size, sample.shape[1] // size
    if rows < 3 or columns < 3:
        return False
    tiles = np.sort(sample[:rows * size, :columns * size].reshape(rows, size, columns, size)
                    .transpose(0, 2, 1, 3).reshape(rows, columns, size * size), axis=-1)
    tiles = tiles.astype(np.int16)
    n = size * size
    p10, p90 = tiles[..., n // 10], tiles[..., (9 * n) // 10]
    low_mark, high_mark = FAINT_MARK_LEVELS
    # A flat bulk (10th to 90th percentile), and marks a step beyond it: the second brightest
    # sample above the 90th percentile, or the second darkest below the 10th (one stray pixel
    # is noise; a gradient has no step).
    bright = tiles[..., -2] - p90
    dark = p10 - tiles[..., 1]
    faint = (p90 - p10 <= FAINT_FLAT_LEVELS) & (
        ((bright >= low_mark) & (bright <= high_mark)) | ((dark >= low_mark) & (dark <= high_mark)))
    busy = cv2.dilate((p90 - p10 > FAINT_BUSY_LEVELS).astype(np.uint8), np.ones((3, 3), np.uint8))
    return int(np.count_nonzero(faint & (busy == 0))) >= FAINT_MIN_TILES


# --- colour ---------------------------------------------------------------------------------


def _palette_to_rgb8(pixels: np.ndarray, ds: Dataset) -> np.ndarray:
    rgb = apply_color_lut(pixels, ds)[..., :3]
    if rgb.dtype == np.uint8:
        return rgb
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
    bits = int(descriptor[2]) if descriptor is not None else 16
    if bits > 8 and int(rgb.max()) > 255:
        return (rgb.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _to_rgb8(pixels: np.ndarray, space: str, ds: Dataset) -> np.ndarray:
    if pixels.dtype != np.uint8:
        bits = int(ds.get("BitsStored", 8) or 8)
        top = float(2**bits - 1)
        low = float(pixels.min()) if pixels.dtype.kind == "i" else 0.0
        pixels = _scale(pixels.astype(np.float32), low, max(top, float(pixels.max())))
    if space in ("YBR_FULL", "YBR_FULL_422"):
        return convert_color_space(pixels, space, "RGB")
    return pixels  # RGB, and anything pydicom cannot convert, read as it is


def _color_views(rgb: np.ndarray, tolerance: float) -> list[View]:
    grey = rgb.max(axis=-1)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    views = [View("color", bgr)]
    if int((grey - rgb.min(axis=-1)).max()) <= GREY_IN_COLOUR_LEVELS:
        # A grey picture stored as colour (a secondary capture, a converted scout): text at an
        # extreme or in one grey of its own, and faint text over anatomy, show only in the grey
        # views (but the full range, which the colour view is). A stored window is for grey
        # data, not for this.
        return views + [view for view in _grey_views(grey, Dataset(), False, tolerance)
                        if view.name != "full"]
    sample = rgb[::SUBSAMPLE, ::SUBSAMPLE].astype(np.int16)
    chroma = (sample.max(axis=-1) - sample.min(axis=-1)).mean()
    if chroma >= 4:  # coloured text or overlay on a grey picture: brightest channel as grey
        views.append(View("gray", grey))
    grey = np.ascontiguousarray(grey)
    if _has_faint_marks(grey):  # a faint header band, as on ultrasound
        views.append(View("local", _local_contrast(grey), reread=False))
    detail = _detail(grey)
    if detail is not None:
        image, marks, flat = detail
        views.append(View("detail", image, reread=False))
        # Small text in a band: searched again cropped to the band, which the detector
        # enlarges (a whole 512-pixel frame it searches at its own size).
        views += [View("detail-band", image, reread=False, fallback=True, rows=band)
                  for band in _small_text_bands(marks, flat)]
    return views


def _small_text_bands(marks: np.ndarray, flat: np.ndarray) -> list[tuple[int, int]]:
    """Bands of rows (first, last) where the `marks` run as small text on a flat background:
    runs of rows holding BAND_MIN_MARKS marks or more, gaps of up to BAND_GAP rows bridged,
    each BAND_HEIGHTS[0] to BAND_HEIGHTS[1] rows tall and flat (`flat`) on BAND_FLAT_SHARE of
    it across the marks' columns (not the rim of a speckled picture), padded by half its
    height or BAND_PAD rows; the BAND_COUNT fullest."""
    rows = np.flatnonzero(np.count_nonzero(marks, axis=1) >= BAND_MIN_MARKS)
    if not rows.size:
        return []
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > BAND_GAP + 1) + 1)
    low, high = BAND_HEIGHTS
    bands = []
    for run in runs:
        a, b = int(run[0]), int(run[-1])
        columns = np.flatnonzero(marks[a:b + 1].any(axis=0))
        if low <= b - a + 1 <= high and \
                flat[a:b + 1, columns[0]:columns[-1] + 1].mean() >= BAND_FLAT_SHARE:
            bands.append((a, b))
    fullest = sorted(bands, key=lambda band: -np.count_nonzero(marks[band[0]:band[1] + 1]))
    last = marks.shape[0] - 1
    return sorted((max(0, a - pad), min(last, b + pad)) for a, b in fullest[:BAND_COUNT]
                  for pad in [max(BAND_PAD, (b - a + 1) // 2)])


def _detail(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Each pixel's difference from the median of the DETAIL_KERNEL² pixels around it, times
    DETAIL_GAIN: marks a few levels off a flat background at full contrast, whatever its level.
    Returned with the marks and where the background is flat; None unless at least
    DETAIL_MIN_PIXELS pixels lie DETAIL_MARK_LEVELS off a background flat around them (its
    DETAIL_FLAT_KERNEL² range within DETAIL_FLAT_LEVELS): text, not speckle or compression
    noise."""
    background = cv2.medianBlur(grey, DETAIL_KERNEL)
    difference = cv2.absdiff(grey, background)
    flat = cv2.morphologyEx(background, cv2.MORPH_GRADIENT,
                            np.ones((DETAIL_FLAT_KERNEL, DETAIL_FLAT_KERNEL), np.uint8))
    low, high = DETAIL_MARK_LEVELS
    flat = flat <= DETAIL_FLAT_LEVELS
    marks = flat & (difference >= low) & (difference <= high)
    if np.count_nonzero(marks) < DETAIL_MIN_PIXELS:
        return None
    return cv2.convertScaleAbs(difference, alpha=DETAIL_GAIN), marks, flat
