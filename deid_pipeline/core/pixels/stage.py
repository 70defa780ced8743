"""The pixel stage for one file: read every distinct frame, judge each word, fill the PHI boxes
on every frame, write the pixels back in the input's own transfer syntax.

A file whose pixels need no change keeps its Pixel Data bytes exactly (MIDI-B pixels_retained is
an MD5 of them). The findings name file, frames, box, reason and scores, never the text read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from deid_pipeline.core.deid.free_text import SpanFinder
from deid_pipeline.core.deid.identifiers import IdentifyingValues
from deid_pipeline.core.pixels.ocr import Box, TextReader
from deid_pipeline.core.pixels.phi import PixelPhiJudge, Reason
from deid_pipeline.core.pixels.redact import fill_boxes
from deid_pipeline.core.pixels.views import frames_to_read
from deid_pipeline.core.pixels.zones import Zone
from deid_pipeline.core.transcode import decode_pixels, transfer_syntax_of, write_pixels_back


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
            for verdict in judge.judge_frame(self.reader.read_frame(frame.pixels, ds)):
                result.findings.append(BoxFinding(frame.indices, verdict.box, verdict.is_phi,
                                                  verdict.reason.value, verdict.score))
        for zone in self.zones:
            if zone.applies_to(ds):
                result.findings += [BoxFinding((), box, True, "zone", 1.0)
                                    for box in zone.boxes_for(ds)]
        return result, pixels

    def redact(self, ds: Dataset, known: IdentifyingValues, *, sex: str | None = None,
               ages: Sequence[str] = ()) -> PixelResult:
        """Find and hide burned-in PHI in `ds`, in place."""
        result, pixels = self.find(ds, known, sex=sex, ages=ages)
        if pixels is None:
            return result
        if result.phi_boxes:
            original_syntax = transfer_syntax_of(ds)
            redacted = fill_boxes(pixels, ds, result.phi_boxes)
            result.note = write_pixels_back(ds, redacted, original_syntax, self.lossy_policy)
            result.changed = True
        # Everything flagged was hidden: the image no longer carries burned-in identification.
        ds.BurnedInAnnotation = "NO"
        return result


__all__ = ["BoxFinding", "PixelRedactor", "PixelResult", "Reason", "Zone"]
