"""The pixel stage over a partition, in the three steps the asset graph shows: find PHI in the
de-identified files (knowing each original's values), fill the boxes (pixels stored natively),
encode the redacted pixels back in each input's own transfer syntax. A file without PHI boxes is
copied byte for byte at every step, so its Pixel Data never changes."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pydicom
from pydicom.uid import ExplicitVRLittleEndian

from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.deid.batch import FINDING_COLUMNS, finding_row
from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.deid.method import record_pixels_cleaned
from deid_pipeline.core.pixels.phi import ages_of
from deid_pipeline.core.pixels.redact import fill_boxes
from deid_pipeline.core.pixels.stage import PixelRedactor
from deid_pipeline.core.quiet import file_messages_muted
from deid_pipeline.core.transcode import decode_pixels, write_pixels_back


@dataclass
class StepReport:
    files: int = 0
    changed: int = 0
    seconds: float = 0.0
    notes: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # output file -> reason

    def note(self, text: str | None) -> None:
        if text:
            self.notes[text] = self.notes.get(text, 0) + 1


def find_phi(files: pd.DataFrame, incoming: Path, deidentified: Path,
             redactor: PixelRedactor) -> tuple[pd.DataFrame, StepReport]:
    """Boxes of every de-identified file, judged against its original's identifying values."""
    report, rows = StepReport(), []
    started = time.perf_counter()
    for source, output in files[["source", "output"]].itertuples(index=False):
        report.files += 1
        with file_messages_muted():
            try:
                original = pydicom.dcmread(incoming / source, stop_before_pixels=True)
                ds = pydicom.dcmread(deidentified / output)
                result, _ = redactor.find(
                    ds, gather(original), sex=str(original.get("PatientSex", "") or ""),
                    ages=ages_of(original))
            # One unreadable file fails its own finding, never the partition's.
            except Exception as exc:  # noqa: BLE001
                report.failed[output] = type(exc).__name__
                continue
        report.changed += bool(result.phi_boxes)
        rows += [finding_row(output, f) for f in result.findings]
    report.seconds = time.perf_counter() - started
    return pd.DataFrame(rows, columns=FINDING_COLUMNS), report


def _copy(src: Path, dst: Path) -> None:
    write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))


def redact_tree(findings: pd.DataFrame, deidentified: Path, redacted: Path) -> StepReport:
    """Fill the PHI boxes of each file on every frame; changed files are stored natively
    (Explicit VR Little Endian) for the encoding step."""
    report = StepReport()
    started = time.perf_counter()
    phi = findings[findings["is_phi"].astype(bool)]
    boxes = {file: list(zip(g.x1, g.y1, g.x2, g.y2, strict=True))
             for file, g in phi.groupby("file")}
    for path in sorted(deidentified.rglob("*.dcm")):
        relpath = path.relative_to(deidentified).as_posix()
        report.files += 1
        if relpath not in boxes:
            _copy(path, redacted / relpath)
            continue
        with file_messages_muted():
            ds = pydicom.dcmread(path)
            pixels = fill_boxes(decode_pixels(ds), ds, boxes[relpath])
            report.note(write_pixels_back(ds, pixels, ExplicitVRLittleEndian))
            ds.BurnedInAnnotation = "NO"
            record_pixels_cleaned(ds)
            write_atomically(redacted / relpath,
                             lambda tmp, ds=ds: ds.save_as(tmp, enforce_file_format=True))
        report.changed += 1
    report.seconds = time.perf_counter() - started
    return report


def encode_tree(files: pd.DataFrame, redacted: Path, encoded: Path,
                lossy_policy: str = "same") -> StepReport:
    """Redacted files back in their input's own transfer syntax. A file still in that syntax
    (not redacted, or natively stored from the start) is copied as it is."""
    report = StepReport()
    started = time.perf_counter()
    syntax_of = dict(zip(files["output"], files["transfer_syntax"], strict=True))
    for path in sorted(redacted.rglob("*.dcm")):
        relpath = path.relative_to(redacted).as_posix()
        report.files += 1
        with file_messages_muted():
            header = pydicom.dcmread(path, stop_before_pixels=True)
            original_syntax = syntax_of.get(relpath, header.file_meta.TransferSyntaxUID)
            if header.file_meta.TransferSyntaxUID == original_syntax:
                _copy(path, encoded / relpath)
                continue
            ds = pydicom.dcmread(path)
            report.note(write_pixels_back(ds, decode_pixels(ds), original_syntax, lossy_policy))
            write_atomically(encoded / relpath,
                             lambda tmp, ds=ds: ds.save_as(tmp, enforce_file_format=True))
        report.changed += 1
    report.seconds = time.perf_counter() - started
    return report
