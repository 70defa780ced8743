"""The pixel stage for one file: read every distinct frame, judge each word, fill the PHI boxes
on every frame, write the pixels back in the input's own transfer syntax.

A file whose pixels need no change keeps its Pixel Data bytes exactly (MIDI-B pixels_retained is
an MD5 of them). The findings name file, frames, box, reason and scores, never the text read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from pydicom.dataset import Dataset

from deid_pipeline.core.deid.free_text import SpanFinder
from deid_pipeline.core.deid.identifiers import IdentifyingValues
from deid_pipeline.core.pixels.ink import (difference_from_background, ink_extent,
                                           stroke_contrast)
from deid_pipeline.core.pixels.ocr import Box, TextLine, TextReader, Word, split_words
from deid_pipeline.core.pixels.phi import (PixelPhiJudge, Reason, WordVerdict, awaits_value,
                                           visual_lines)
from deid_pipeline.core.pixels.redact import fill_boxes, padded
from deid_pipeline.core.pixels.views import View, frames_to_read, reading_views
from deid_pipeline.core.pixels.zones import Zone
from deid_pipeline.core.transcode import decode_pixels, transfer_syntax_of, write_pixels_back


# A line whose first or last word is PHI, or whose last word is a label ("ID:", "AC" of "ACC:"),
# may go on where the detector stopped (a date right after an ID, faint ink over anatomy, a
# value over the body's edge): the strip this many line heights beyond that end, on the line's
# rows and short of any other line, is read again, and hidden where it holds PHI.
STRIP_HEIGHTS = 8
# After a label, its value: an ID or a name of up to about twenty characters.
LABEL_STRIP_HEIGHTS = 14
# PHI read in a strip beyond a line's end is read on beyond, up to this many strips in all.
STRIP_CHAIN = 3
# Where the line's own view shows no PHI in the strip, these views are read too (the rest of a
# faint line may stand out only where the noise is smoothed).
SMOOTHED_VIEWS = ("background", "quiet")
# Ink touching a PHI line's end (in any reading view), at most this many text heights wide, is
# part of the line, read or not.
ADJACENT_MAX_HEIGHTS = 4
# Text burned in at one place on many distinct frames (a series whose anatomy moves under its
# banner) is fitted on each a little differently, as the anatomy under it drags the fit; every
# box is hidden on every frame, so their union would blacken the spread of the fits. Where
# boxes on SETTLE_MIN_FRAMES frames or more overlap by SETTLE_OVERLAP (intersection over
# union), one from each frame, they are one box: their median, edge by edge.
SETTLE_MIN_FRAMES, SETTLE_OVERLAP = 3, 0.5
# What a strip's reading may be found to hold: the file's own values and dates, IDs and times
# (not initials, sexes, ages or bare digit runs, which texture read as text matches by chance).
STRIP_REASONS = frozenset({Reason.NAME, Reason.IDENTIFIER, Reason.PLACE, Reason.DATE,
                           Reason.TEXT_PATTERN, Reason.TIME_PATTERN})


@dataclass(frozen=True)
class BoxFinding:
    frames: tuple[int, ...]  # every frame the box was read on (identical frames share it)
    box: Box  # inclusive (x1, y1, x2, y2) before the redaction margin
    is_phi: bool
    reason: str
    text_score: float


@dataclass
class PixelResult:
    findings: list[BoxFinding] = field(default_factory=list)
    changed: bool = False
    frames_read: int = 0
    note: str | None = None  # a syntax or photometric change on writing back

    @property
    def phi_boxes(self) -> list[Box]:
        return [f.box for f in self.findings if f.is_phi]


class PixelRedactor:
    """`reader`: a TextReader to share; by default each process builds its own on first use
    (its ONNX sessions cannot cross to worker processes), on `device` with `threads` ONNX
    threads (0: as many as the CPUs this process may run on). Setting `threads` (or `device`)
    drops a reader already built: the next use builds one with the new setting. `zones`: fixed
    regions per device (a policy's `pixels.zones`), blacked out whatever the OCR reads."""

    def __init__(self, reader: TextReader | None = None, *, redact_all_text: bool = False,
                 zones: Sequence[Zone] = (), finders: Sequence[SpanFinder] = (),
                 lossy_policy: str = "same", device: str = "auto", threads: int = 0) -> None:
        self._reader = reader
        self._device, self._threads = device, threads
        self.redact_all_text = redact_all_text
        self.zones = tuple(zones)
        self.finders = tuple(finders)
        self.lossy_policy = lossy_policy

    @property
    def device(self) -> str:
        return self._device

    @device.setter
    def device(self, device: str) -> None:
        if device != self._device:
            self._device, self._reader = device, None

    @property
    def threads(self) -> int:
        return self._threads

    @threads.setter
    def threads(self, threads: int) -> None:
        if threads < 0:
            raise ValueError(f"threads must be 0 (all CPUs) or more, not {threads}")
        if threads != self._threads:
            self._threads, self._reader = threads, None

    @property
    def reader(self) -> TextReader:
        if self._reader is None:
            self._reader = TextReader(device=self._device, threads=self._threads)
        return self._reader

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None}

    def find(self, ds: Dataset, known: IdentifyingValues, *, sex: str | None = None,
             ages: Sequence[str] = ()) -> tuple[PixelResult, object]:
        """Judge every word of every distinct frame; returns the findings and the decoded pixels
        (reused by `redact`)."""
        result = PixelResult()
        if "PixelData" not in ds:
            return result, None
        pixels = decode_pixels(ds)
        judge = PixelPhiJudge(known, sex=sex, ages=ages, finders=self.finders,
                              redact_all_text=self.redact_all_text)
        for frame in frames_to_read(pixels, ds):
            result.frames_read += 1
            # Made once a frame: the strips beyond lines are read in the same views.
            views = reading_views(frame.pixels, ds)
            lines = self.reader.read(views)
            verdicts = judge.judge_frame(lines)
            if hasattr(self.reader, "recognize") and any(v.is_phi or awaits_value(v.text)
                                                         for v in verdicts):
                verdicts += self._beyond_ends(views, lines, judge)
            for verdict in verdicts:
                result.findings.append(BoxFinding(frame.indices, verdict.box, verdict.is_phi,
                                                  verdict.reason.value, verdict.score))
        if result.frames_read >= SETTLE_MIN_FRAMES:
            result.findings = _settled(result.findings)
        for zone in self.zones:
            if zone.applies_to(ds):
                result.findings += [BoxFinding((), box, True, "zone", 1.0)
                                    for box in zone.boxes_for(ds)]
        return result, pixels

    def _beyond_ends(self, views_of_frame: Sequence[View], lines: Sequence[TextLine],
                     judge: PixelPhiJudge) -> list[WordVerdict]:
        """PHI read in the strips just beyond the ends of lines whose end word is PHI, and
        beyond the last word of lines that end in a label, in the frame's reading views."""
        images = {view.name: view.image for view in views_of_frame}
        smoothed = [view.image for view in views_of_frame if view.name in SMOOTHED_VIEWS]
        found = []
        for line in visual_lines(lines):
            image = images.get(line.view)
            verdicts = judge.judge(line)
            if image is None or not verdicts:
                continue
            for end, verdict in ((-1, verdicts[0]), (1, verdicts[-1])):
                labels_value = end > 0 and awaits_value(verdict.text)
                if not (verdict.is_phi or labels_value):
                    continue
                strip = _strip_beyond(line.box, end, image.shape[:2], lines,
                                      LABEL_STRIP_HEIGHTS if labels_value else STRIP_HEIGHTS)
                if strip is None:
                    continue
                if labels_value:  # the rest of the label and its value: read, whatever is near
                    found += self._read_strip(image, strip, judge, line, end, to_end=True)
                    continue
                # The line's own view first; faint ink next to it may show only in another.
                views = (image, *(other for other in images.values() if other is not image))
                adjacent = next((box for view_image in views
                                 if (box := _adjacent_ink(view_image, strip, end))), None)
                word = (verdict.box[0], line.box[1], verdict.box[2], line.box[3])
                if adjacent and _inside(adjacent, padded(word, *image.shape[:2])):
                    continue  # the word's own rim, which its margin hides
                if adjacent:
                    found.append(WordVerdict("", adjacent, True, Reason.SAME_LINE, verdict.score))
                    continue
                found += self._read_on([image, *(other for other in smoothed
                                                 if other is not image)],
                                       strip, judge, line, end, lines)
        return found

    def _read_on(self, views: Sequence[np.ndarray], strip: Box, judge: PixelPhiJudge,
                 line: TextLine, end: int, lines: Sequence[TextLine]) -> list[WordVerdict]:
        """PHI read in `strip` beyond `line`'s `end`, in the first view where any is (the
        rest of a faint line may stand out only in a smoothed view). Where what was read runs
        to the strip's far end, the line goes on: the next strip is read too, judged with all
        read so far, its words PHI as the rest of a line holding PHI; up to STRIP_CHAIN strips
        (a line the detector found one word of)."""
        found: list[WordVerdict] = []
        for step in range(STRIP_CHAIN):
            read = next((read for image in views
                         if (read := self._read_strip(image, strip, judge, line, end,
                                                      continued=step > 0))), [])
            if not read:
                break
            found += read
            reached, height = read[-1].box, strip[3] - strip[1] + 1
            if (reached[2] < strip[2] - height) if end > 0 else (reached[0] > strip[0] + height):
                break  # the line ends inside this strip
            words = [Word(text, reached, read[-1].score) for text in read[-1].text.split()]
            context = list(line.words) + words if end > 0 else words + list(line.words)
            box = (min(line.box[0], reached[0]), line.box[1], max(line.box[2], reached[2]),
                   line.box[3])
            line = TextLine(box, " ".join(w.text for w in context), line.score, context)
            strip = _strip_beyond(box, end, views[0].shape[:2], lines, STRIP_HEIGHTS)
            if strip is None:
                break
        return found

    def _read_strip(self, image: np.ndarray, strip: Box, judge: PixelPhiJudge, line: TextLine,
                    end: int, to_end: bool = False, continued: bool = False
                    ) -> list[WordVerdict]:
        """The PHI in `strip` (`line`'s rows, beyond its `end`), boxed to the ink columns; with
        `to_end`, read from its first ink to its end and boxed to the characters read (ink
        over anatomy, as a value running onto the body's edge, is not found column by
        column). Its words are judged with the line's (the rest of a value the line began:
        "Medical Center" after "Francis, Todd and Boyer"); `continued`: the strip goes on
        from PHI read up to its start, and what it holds is the rest of that line."""
        found = _strip_ink(image, strip)
        if found is None:
            return []
        crop, (a, b) = found
        x1, y1, x2, y2 = strip
        height = y2 - y1 + 1
        start = max(0, a - height // 4)
        ink = crop[:, start:(x2 - x1 + 1 if to_end else b + height // 4 + 1)]
        ink = cv2.cvtColor(ink, cv2.COLOR_GRAY2BGR) if ink.ndim == 2 else ink
        text, score, characters = self.reader.recognize([np.ascontiguousarray(ink)])[0]
        text = text.strip()
        if not text or not characters:
            return []
        words = split_words(characters, (x1 + start, y1, x1 + start + ink.shape[1] - 1, y2))
        if to_end:  # to half a character's pitch past the last character read
            b = words[-1].box[2] - x1
        line_words = list(line.words or [Word(line.text, line.box, line.score)])
        context = line_words + words if end > 0 else words + line_words
        verdicts = judge.judge(TextLine(line.box, line.text, line.score, context))
        read = verdicts[len(line_words):] if end > 0 else verdicts[:len(words)]
        reasons = [v.reason for v in read if (v.is_phi if continued else v.reason in STRIP_REASONS)]
        return [WordVerdict(text, (x1 + a, y1, x1 + b, y2), True, reasons[0], score)] \
            if reasons else []

    def redact(self, ds: Dataset, known: IdentifyingValues, *, sex: str | None = None,
               ages: Sequence[str] = ()) -> PixelResult:
        """Find and hide burned-in PHI in `ds`, in place."""
        result, pixels = self.find(ds, known, sex=sex, ages=ages)
        if pixels is None:
            return result
        if result.phi_boxes:
            result.note = self.hide(ds, pixels, result.phi_boxes)
            result.changed = True
        # Everything flagged was hidden: the image no longer carries burned-in identification.
        ds.BurnedInAnnotation = "NO"
        return result

    def hide(self, ds: Dataset, pixels: np.ndarray, boxes: Sequence[Box]) -> str | None:
        """Fill `boxes` of `pixels` (ds's, decoded) on every frame and store them back in ds,
        in its own transfer syntax; the write-back's note for the audit, if any."""
        return write_pixels_back(ds, fill_boxes(pixels, ds, boxes), transfer_syntax_of(ds),
                                 self.lossy_policy)


def _strip_ink(image: np.ndarray, strip: Box) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The strip's crop (half a text height more above and below) and the columns of the ink in
    it, relative to the strip; None when it holds no ink."""
    x1, y1, x2, y2 = strip
    height = y2 - y1 + 1
    top, bottom = max(0, y1 - height // 2), min(image.shape[0] - 1, y2 + height // 2)
    crop = image[top:bottom + 1, x1:x2 + 1]
    extent = ink_extent(difference_from_background(crop), 0, crop.shape[1] - 1)
    return None if extent is None else (crop, extent[0])


def _adjacent_ink(image: np.ndarray, strip: Box, end: int) -> Box | None:
    """The ink in `strip` that touches the line's `end` (a gap of at most a text height) and
    is no wider than ADJACENT_MAX_HEIGHTS text heights: part of the line whatever it reads as,
    the detector having stopped short of it (a field's label such as "ID:" before its value).
    Only strokes: ink that leaves nothing in stroke_contrast is anatomy (an organ's edge)."""
    found = _strip_ink(image, strip)
    if found is None:
        return None
    crop, (a, b) = found
    # An organ's edge or a smooth rim beyond the line differs from the background too, but
    # leaves nothing in the strokes' contrast.
    if ink_extent(stroke_contrast(crop), a, b) is None:
        return None
    x1, y1, x2, y2 = strip
    height = y2 - y1 + 1
    gap = (x2 - x1) - b if end < 0 else a
    return (x1 + a, y1, x1 + b, y2) if gap <= height and b - a < ADJACENT_MAX_HEIGHTS * height \
        else None


def _settled(findings: list[BoxFinding]) -> list[BoxFinding]:
    """`findings` with the PHI boxes of one place on many frames as one (SETTLE_*). Each PHI
    box joins the first group whose first or latest box it overlaps enough, else starts one."""
    groups: list[list[int]] = []
    for i, finding in enumerate(findings):
        if not finding.is_phi:
            continue
        group = next((g for g in groups if max(box_iou(findings[g[0]].box, finding.box),
                                               box_iou(findings[g[-1]].box, finding.box))
                      >= SETTLE_OVERLAP), None)
        if group is None:
            groups.append([i])
        else:
            group.append(i)
    settled, merged = [], set()
    for members in groups:
        frames = [frame for i in members for frame in findings[i].frames]
        if len(members) < SETTLE_MIN_FRAMES or len(set(frames)) != len(frames):
            continue  # few frames, or two boxes on one frame: words apart, kept apart
        boxes = np.array([findings[i].box for i in members])
        reasons = [findings[i].reason for i in members]
        settled.append(BoxFinding(tuple(sorted(frames)),
                                  tuple(int(v) for v in np.median(boxes, axis=0).round()),
                                  True, max(sorted(set(reasons)), key=reasons.count),
                                  max(findings[i].text_score for i in members)))
        merged.update(members)
    return [f for i, f in enumerate(findings) if i not in merged] + settled


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two inclusive boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0]) + 1
    height = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if width <= 0 or height <= 0:
        return 0.0
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return width * height / (area - width * height)


def _inside(box: Box, outer: Box) -> bool:
    return outer[0] <= box[0] and box[2] <= outer[2] and outer[1] <= box[1] and box[3] <= outer[3]


def _strip_beyond(box: Box, end: int, shape: tuple[int, int], lines: Sequence[TextLine],
                  heights: int = STRIP_HEIGHTS) -> Box | None:
    """The strip `heights` line heights beyond the left (`end` -1) or right (+1) end of
    `box`, on its rows, inside the image and short of the other lines on those rows; None when
    less than a line height is left."""
    x1, y1, x2, y2 = box
    height = y2 - y1 + 1
    if end > 0:
        a, b = x2 + 1, min(shape[1] - 1, x2 + heights * height)
    else:
        a, b = max(0, x1 - heights * height), x1 - 1
    for other in lines:
        ox1, oy1, ox2, oy2 = other.box
        overlap = min(y2, oy2) - max(y1, oy1) + 1
        if overlap <= 0 or ox2 < a or ox1 > b:
            continue
        if ox1 >= x2:
            b = min(b, ox1 - 1)
        elif ox2 <= x1:
            a = max(a, ox2 + 1)
        else:
            return None  # a line across the strip's rows and this line's
    return (a, y1, b, y2) if b - a + 1 >= height else None


__all__ = ["BoxFinding", "PixelRedactor", "PixelResult", "Reason", "Zone"]
