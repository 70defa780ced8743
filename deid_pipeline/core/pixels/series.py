"""PHI a series shares: a device burns its banner at the same place on every image of a series,
so a box found to hold PHI on some of its images is looked for on the others.

OCR misses a banner on an image now and then: the anatomy under it changes from slice to slice,
and faint ink that reads on one image drowns in the noise of the next. Where another image of
the series holds the same strokes at that place, it is hidden there too. "The same strokes":
the fine detail of the place on the images where the PHI was found (their mean, the text's
strokes with their noise averaged down) correlates with the detail there on the other image.
Another patient's text or plain air correlates with little. Anatomy much alike from slice to
slice can correlate too, so a place counts only where most of the series' images hold PHI there
(a box the stage found on anatomy beside a line, on most of a series, is widened on the rest).

Images of one frame only: a multi-frame image's frames are settled among themselves
(core.pixels.stage). No Dagster here; the pixel batch and the tag batch both use it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pydicom

from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.deid.method import record_pixels_cleaned
from deid_pipeline.core.pixels.ocr import Box
from deid_pipeline.core.pixels.stage import PixelRedactor, box_iou
from deid_pipeline.core.transcode import decode_pixels

SERIES_REASON = "series:same-place"
# Boxes of one place on different images overlap this much (intersection over union); the
# place is their median, edge by edge.
PLACE_OVERLAP = 0.5
# A place counts when PHI was found there on at least this share of the series' images, and on
# two at least: burned-in PHI is read on most of them, a misreading (an annotation, a scale taken
# for PHI) on few.
SHARED_MIN_SHARE, SHARED_MIN_IMAGES = 0.5, 2
# An image hides a place already where its own PHI boxes cover this share of it.
COVERED = 0.9
# The strokes' template is the mean of the detail on up to this many images where PHI was found.
TEMPLATE_IMAGES = 3
# Detail: the image less its 5x5 median, which takes strokes a few pixels wide and leaves
# anatomy smoother than they are. Crops reach this many pixels beyond the place (the median's
# reach at its edge).
DETAIL_SIZE, CROP_MARGIN = 5, 2
# The same strokes: a correlation of at least this, and at least SHARED_MIN_SIGMAS times what
# chance gives a crop of that many pixels (1/sqrt(n)): text on the MR series where OCR missed
# it correlates 0.35-0.55 with its series' template; anatomy and other patients' banners at
# the same place correlate under 0.2.
SHARED_MIN_CORRELATION, SHARED_MIN_SIGMAS = 0.3, 5.0


@dataclass(frozen=True)
class SeriesImage:
    """One image of the batch: its file, its series (the output tree's series folder) and the
    PHI boxes found on it."""

    file: str
    series: str
    phi_boxes: tuple[Box, ...]


def series_folder(output: str) -> str:
    """The series of a file of the output tree (<patient>/<study>/<series>/<instance>.dcm)."""
    return output.rpartition("/")[0]


# A single-frame image as grey float32, or None where there is none (several frames, no pixels).
FrameLoader = Callable[[str], "np.ndarray | None"]


def shared_phi(images: Iterable[SeriesImage], found_on: FrameLoader,
               looked_on: FrameLoader) -> dict[str, list[tuple[Box, float]]]:
    """The boxes of PHI found on other images of each image's series that it holds too, with
    their correlation, by file. `found_on` gives an image where PHI was found as it was read
    (its text still there); `looked_on` the image a box may be added to. One image looked on is
    held at a time (a long series holds hundreds)."""
    by_series: dict[str, list[SeriesImage]] = defaultdict(list)
    for image in images:
        by_series[image.series].append(image)
    added: dict[str, list[tuple[Box, float]]] = {}
    for members in by_series.values():
        if len(members) < 2 or not any(m.phi_boxes for m in members):
            continue
        templates = _templates(members, found_on)
        for member in members:
            todo = [(place, template, shape)
                    for place, (template, shape, sources) in templates.items()
                    if member.file not in sources and _coverage(member.phi_boxes, place) < COVERED]
            image = looked_on(member.file) if todo else None
            if image is None:
                continue
            for place, template, shape in todo:
                if image.shape != shape:
                    continue
                correlation = _correlation(template, _detail(image, place))
                if correlation >= max(SHARED_MIN_CORRELATION,
                                      SHARED_MIN_SIGMAS / np.sqrt(template.size)):
                    added.setdefault(member.file, []).append((place, round(correlation, 3)))
    return added


def _templates(members: list[SeriesImage], found_on: FrameLoader
               ) -> dict[Box, tuple[np.ndarray, tuple[int, ...], list[str]]]:
    """Each place of the series that counts (found on enough of its images, and not on all):
    the mean detail of its strokes, the shape of the images it came from, the files it was
    found on."""
    templates = {}
    seen: dict[str, np.ndarray | None] = {}  # most places share their first images
    for place, sources in _places(members):
        if len(sources) < max(SHARED_MIN_IMAGES, SHARED_MIN_SHARE * len(members)):
            continue  # a box on a few images: as likely a misreading there
        if len(sources) == len(members):
            continue  # nowhere else to look
        for file in sources[:TEMPLATE_IMAGES]:
            if file not in seen:
                seen[file] = found_on(file)
        found = _template([seen[file] for file in sources[:TEMPLATE_IMAGES]], place)
        if found is not None:
            templates[place] = (*found, sources)
    return templates


def _places(members: list[SeriesImage]) -> list[tuple[Box, list[str]]]:
    """Each place PHI was found at in the series, and the files it was found on: boxes of
    different images grouped when they overlap PLACE_OVERLAP, the place their median."""
    groups: list[list[tuple[Box, str]]] = []
    for member in members:
        for box in member.phi_boxes:
            group = next((g for g in groups if box_iou(g[0][0], box) >= PLACE_OVERLAP
                          and all(file != member.file for _, file in g)), None)
            if group is None:
                groups.append([(box, member.file)])
            else:
                group.append((box, member.file))
    places = []
    for group in groups:
        boxes = np.array([box for box, _ in group])
        place = tuple(int(v) for v in np.median(boxes, axis=0).round())
        places.append((place, [file for _, file in group]))
    return places


def _template(images: list[np.ndarray | None], place: Box
              ) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """The mean detail at `place` over `images` of one shape, each scaled by its strongest
    detail, and that shape (an image looked on must have it); None without any."""
    details, shape = [], None
    for image in images:
        if image is None or (shape is not None and image.shape != shape):
            continue
        shape = image.shape
        detail = _detail(image, place)
        scale = float(np.percentile(np.abs(detail), 99))
        if scale > 0:
            details.append(detail / scale)
    return (np.mean(details, axis=0), shape) if details else None


def _detail(image: np.ndarray, place: Box) -> np.ndarray:
    x1, y1, x2, y2 = place
    rows, columns = image.shape
    crop = image[max(0, y1 - CROP_MARGIN):min(rows, y2 + CROP_MARGIN + 1),
                 max(0, x1 - CROP_MARGIN):min(columns, x2 + CROP_MARGIN + 1)]
    crop = np.ascontiguousarray(crop, dtype=np.float32)
    return crop - cv2.medianBlur(crop, DETAIL_SIZE)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / norm if norm else 0.0


def _coverage(boxes: Iterable[Box], place: Box) -> float:
    x1, y1, x2, y2 = place
    mask = np.zeros((y2 - y1 + 1, x2 - x1 + 1), bool)
    for bx1, by1, bx2, by2 in boxes:
        mask[max(0, by1 - y1):max(0, by2 - y1 + 1), max(0, bx1 - x1):max(0, bx2 - x1 + 1)] = True
    return float(mask.mean())


def single_frame(path: Path) -> np.ndarray | None:
    """The image of a one-frame DICOM file as grey float32; None for several frames or none,
    and for a file that cannot be read now: the pass only adds boxes, and a batch's tables must
    not be lost to it."""
    try:
        ds = pydicom.dcmread(path, force=True)  # an input may lack the DICM preamble
        if "PixelData" not in ds or int(ds.get("NumberOfFrames", 1) or 1) > 1:
            return None
        pixels = decode_pixels(ds).astype(np.float32)
    except Exception:  # noqa: BLE001 - read and decoded by its stage before; gone or changed
        return None
    return pixels.mean(axis=-1) if pixels.ndim == 3 else pixels


def hide_in_written(path: Path, boxes: Sequence[Box], redactor: PixelRedactor) -> str | None:
    """Fill `boxes` in the DICOM file at `path` (an output already written) on every frame, its
    pixels stored back in its own transfer syntax, the file replaced atomically; the
    write-back's note, if any."""
    ds = pydicom.dcmread(path)
    note = redactor.hide(ds, decode_pixels(ds), boxes)
    ds.BurnedInAnnotation = "NO"
    record_pixels_cleaned(ds)
    write_atomically(path, lambda tmp: ds.save_as(tmp, enforce_file_format=True))
    return note
