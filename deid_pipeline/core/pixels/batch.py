"""The pixel stage over a partition, in the three steps the asset graph shows: find PHI in the
de-identified files (knowing each original's values; then the PHI a series shares, on the images
of the series where the OCR missed it: core.pixels.series), fill the boxes (pixels stored
natively), encode the redacted pixels back in each input's own transfer syntax. A file without
PHI boxes is copied byte for byte at every step, so its Pixel Data never changes.

Each step runs its files in worker processes (`workers`; one runs them in this process) and
gives the same result either way, in the same order. A file a step cannot process goes to that
step's quarantine folder with its reason and no further: a file whose text could not be read is
never delivered unredacted. Workers start from a fork server, which imports the main module: a
script that runs a step on several workers needs the `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pydicom
from pydicom.uid import ExplicitVRLittleEndian

from deid_pipeline.core.atomic import remove_stale_temporaries, write_atomically
from deid_pipeline.core.deid.batch import FINDING_COLUMNS, finding_row
from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.deid.method import record_pixels_cleaned
from deid_pipeline.core.pixels.ocr import Box, providers_for
from deid_pipeline.core.pixels.phi import ages_of
from deid_pipeline.core.pixels.redact import fill_boxes
from deid_pipeline.core.pixels.series import (SERIES_REASON, SeriesImage, series_folder,
                                              shared_phi, single_frame)
from deid_pipeline.core.pixels.stage import BoxFinding, PixelRedactor
from deid_pipeline.core.quarantine import read_reason
from deid_pipeline.core.quiet import file_messages_muted
from deid_pipeline.core.transcode import CodecError, decode_pixels, quarantine, write_pixels_back
from deid_pipeline.core.workers import WORKER_DIED, WorkerPool, available_cpus

# Beyond this many workers a step gains little: they share memory bandwidth, and each holds its
# own ONNX sessions and a decoded image (a multi-frame series can take hundreds of MB).
MAX_WORKERS = 8
# Files handed to a worker at a time: enough to keep the exchange with workers cheap, few enough
# that one slow run of files does not leave the other workers idle at the end.
MAX_CHUNK = 16
REASON_SUFFIX = ".reason.txt"  # beside each quarantined file (core.transcode.quarantine)
# What failed, the first part of each step's quarantine reasons.
FINDING_FAILED = "text could not be read"
REDACTING_FAILED = "boxes could not be filled"
ENCODING_FAILED = "cannot be encoded back"

Item = TypeVar("Item")


@dataclass
class StepReport:
    files: int = 0
    changed_files: list[str] = field(default_factory=list)  # in the order processed
    seconds: float = 0.0
    workers: int = 1
    notes: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # quarantined file -> reason

    @property
    def changed(self) -> int:
        return len(self.changed_files)

    def note(self, text: str | None) -> None:
        if text:
            self.notes[text] = self.notes.get(text, 0) + 1

    @property
    def reasons(self) -> dict[str, int]:
        """Quarantined files per reason (a step and an exception type or codec reason, never a
        value read from the file)."""
        counts: dict[str, int] = {}
        for reason in self.failed.values():
            counts[reason] = counts.get(reason, 0) + 1
        return counts


@dataclass(frozen=True)
class _Outcome:
    changed: bool = False
    note: str | None = None
    reason: str | None = None  # why the file went to quarantine
    rows: tuple[dict, ...] = ()  # finding rows


def default_workers() -> int:
    return max(1, min(available_cpus(), MAX_WORKERS))


def resolved_device(device: str) -> str:
    """"cuda" or "cpu": where the OCR of `device` ("auto", "cpu" or "cuda") runs here, known
    without loading the models."""
    return "cpu" if providers_for(device)[0] == "CPUExecutionProvider" else "cuda"


def quarantined_files(quarantine_dir: Path) -> set[str]:
    """Relative paths of the files a step put in `quarantine_dir` (read from their reasons)."""
    if not quarantine_dir.is_dir():
        return set()
    return {read_reason(reason)[0] for reason in quarantine_dir.rglob(f"*{REASON_SUFFIX}")}


def _in_workers(work: Callable[[Item], _Outcome], items: Sequence[Item], workers: int,
                step: str, initializer: Callable[..., None] | None = None,
                initargs: tuple = (), output: Path | None = None) -> list[_Outcome]:
    """`work` over `items`, results in their order, on `workers` processes. An item whose
    process dies or stalls (core.workers.WorkerPool), run alone too, fails `step`; the hidden
    temporaries that workers stopped with it left in `output` are cleared."""
    workers = min(workers, len(items))
    chunksize = max(1, min(MAX_CHUNK, len(items) // (workers * 4)))
    chunks = [list(items[start:start + chunksize]) for start in range(0, len(items), chunksize)]
    pool = WorkerPool(workers, initializer, initargs)
    died = [_Outcome(reason=f"{step}: {WORKER_DIED}")]
    outcomes = [outcome for _, chunk_outcomes in pool.map(partial(_each, work), chunks,
                                                          crashed=lambda item: died)
                for outcome in chunk_outcomes]
    if pool.broken_pools and output is not None:
        remove_stale_temporaries(output)
    return outcomes


def _each(work: Callable[[Item], _Outcome], chunk: list[Item]) -> list[_Outcome]:
    return [work(item) for item in chunk]


def _tally(report: StepReport, relpaths: Iterable[str], outcomes: Iterable[_Outcome],
           source: Path, quarantine_dir: Path, started: float) -> None:
    for relpath, outcome in zip(relpaths, outcomes, strict=True):
        report.files += 1
        if outcome.reason is not None:
            report.failed[relpath] = outcome.reason
            quarantine(source / relpath, relpath, outcome.reason, quarantine_dir)
            continue
        if outcome.changed:
            report.changed_files.append(relpath)
        report.note(outcome.note)
    report.seconds = time.perf_counter() - started


def _reason(step: str, exc: Exception) -> str:
    """Why a file failed a step, without quoting it (exception messages can hold PHI)."""
    if isinstance(exc, CodecError):
        return f"{step}: {exc}"
    return f"{step} ({type(exc).__name__})"


# --- finding ----------------------------------------------------------------------------------

_worker_redactor: PixelRedactor | None = None


def _start_finder(redactor: PixelRedactor, threads: int) -> None:
    """A worker's own reader (ONNX sessions do not pickle), its threads a share of the CPUs:
    the default, one thread per CPU in every worker, oversubscribes them."""
    global _worker_redactor
    redactor.threads = threads  # its reader is built on first use, with these threads
    _worker_redactor = redactor


def _find_in_worker(job: tuple[Path, Path, str, str]) -> _Outcome:
    assert _worker_redactor is not None
    return _find_file(_worker_redactor, *job)


def _find_file(redactor: PixelRedactor, incoming: Path, deidentified: Path, source: str,
               output: str) -> _Outcome:
    with file_messages_muted():
        try:
            # force: the tag stage accepted files without the DICM preamble too.
            original = pydicom.dcmread(incoming / source, stop_before_pixels=True, force=True)
            ds = pydicom.dcmread(deidentified / output)
            result, _ = redactor.find(
                ds, gather(original), sex=str(original.get("PatientSex", "") or ""),
                ages=ages_of(original))
        # One unreadable file fails its own finding, never the partition's.
        except Exception as exc:  # noqa: BLE001
            return _Outcome(reason=_reason(FINDING_FAILED, exc))
    return _Outcome(changed=bool(result.phi_boxes),
                    rows=tuple(finding_row(output, f) for f in result.findings))


def find_phi(files: pd.DataFrame, incoming: Path, deidentified: Path, redactor: PixelRedactor,
             quarantine_dir: Path, workers: int = 1) -> tuple[pd.DataFrame, StepReport]:
    """Boxes of every de-identified file, judged against its original's identifying values.
    With several workers each builds its own reader from `redactor`'s settings."""
    started = time.perf_counter()
    pairs = list(files[["source", "output"]].itertuples(index=False, name=None))
    jobs = [(incoming, deidentified, source, output) for source, output in pairs]
    report = StepReport(workers=max(1, min(workers, len(jobs))))
    if report.workers == 1:
        outcomes = [_find_file(redactor, *job) for job in jobs]
    else:
        threads = max(1, available_cpus() // report.workers)
        outcomes = _in_workers(_find_in_worker, jobs, report.workers, FINDING_FAILED,
                               _start_finder, (redactor, threads))
    outputs = [output for _, output in pairs]
    outcomes = _with_shared_phi(outputs, outcomes, deidentified)
    _tally(report, outputs, outcomes, deidentified, quarantine_dir, started)
    rows = [row for outcome in outcomes for row in outcome.rows]
    return pd.DataFrame(rows, columns=FINDING_COLUMNS), report


def _with_shared_phi(outputs: list[str], outcomes: list[_Outcome], deidentified: Path
                     ) -> list[_Outcome]:
    """The outcomes with the PHI each file's series shares added (core.pixels.series): boxes
    found on most images of a series, on the others that hold the same strokes."""
    images = [SeriesImage(output, series_folder(output),
                          tuple((row["x1"], row["y1"], row["x2"], row["y2"])
                                for row in outcome.rows if row["is_phi"]))
              for output, outcome in zip(outputs, outcomes, strict=True)
              if outcome.reason is None]

    def image(output: str) -> np.ndarray | None:
        return single_frame(deidentified / output)

    shared = shared_phi(images, image, image)
    return [replace(outcome, changed=True, rows=outcome.rows + tuple(
                finding_row(output, BoxFinding((), box, True, SERIES_REASON, correlation))
                for box, correlation in shared[output]))
            if output in shared else outcome
            for output, outcome in zip(outputs, outcomes, strict=True)]


# --- redacting and encoding -------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> None:
    write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))


def _map(work: Callable[[Item], _Outcome], items: Sequence[Item], workers: int, step: str,
         output: Path) -> list[_Outcome]:
    if workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    return _in_workers(work, items, workers, step, output=output)


def _redact_file(deidentified: Path, redacted: Path,
                 job: tuple[str, list[Box] | None]) -> _Outcome:
    relpath, boxes = job
    if not boxes:
        _copy(deidentified / relpath, redacted / relpath)
        return _Outcome()
    with file_messages_muted():
        try:
            ds = pydicom.dcmread(deidentified / relpath)
            pixels = fill_boxes(decode_pixels(ds), ds, boxes)
            note = write_pixels_back(ds, pixels, ExplicitVRLittleEndian)
            ds.BurnedInAnnotation = "NO"
            record_pixels_cleaned(ds)
            write_atomically(redacted / relpath,
                             lambda tmp: ds.save_as(tmp, enforce_file_format=True))
        except Exception as exc:  # noqa: BLE001 - the file's own failure, not the partition's
            return _Outcome(reason=_reason(REDACTING_FAILED, exc))
    return _Outcome(changed=True, note=note)


def redact_tree(findings: pd.DataFrame, deidentified: Path, redacted: Path,
                quarantine_dir: Path, held: Iterable[str] = (), workers: int = 1) -> StepReport:
    """Fill the PHI boxes of each file on every frame; changed files are stored natively
    (Explicit VR Little Endian) for the encoding step. Files in `held` (quarantined by the
    finding step) are left out."""
    started = time.perf_counter()
    phi = findings[findings["is_phi"].astype(bool)]
    boxes = {file: list(zip(g.x1, g.y1, g.x2, g.y2, strict=True))
             for file, g in phi.groupby("file")}
    held = set(held)
    relpaths = [relpath for relpath in (p.relative_to(deidentified).as_posix()
                                        for p in sorted(deidentified.rglob("*.dcm")))
                if relpath not in held]
    report = StepReport(workers=max(1, min(workers, len(relpaths))))
    outcomes = _map(partial(_redact_file, deidentified, redacted),
                    [(relpath, boxes.get(relpath)) for relpath in relpaths], report.workers,
                    REDACTING_FAILED, redacted)
    _tally(report, relpaths, outcomes, deidentified, quarantine_dir, started)
    return report


def _encode_file(redacted: Path, encoded: Path, lossy_policy: str,
                 job: tuple[str, str | None]) -> _Outcome:
    relpath, original_syntax = job
    with file_messages_muted():
        try:
            header = pydicom.dcmread(redacted / relpath, stop_before_pixels=True)
            original_syntax = original_syntax or header.file_meta.TransferSyntaxUID
            if header.file_meta.TransferSyntaxUID == original_syntax:
                _copy(redacted / relpath, encoded / relpath)
                return _Outcome()
            ds = pydicom.dcmread(redacted / relpath)
            note = write_pixels_back(ds, decode_pixels(ds), original_syntax, lossy_policy)
            write_atomically(encoded / relpath,
                             lambda tmp: ds.save_as(tmp, enforce_file_format=True))
        except Exception as exc:  # noqa: BLE001 - the file's own failure, not the partition's
            return _Outcome(reason=_reason(ENCODING_FAILED, exc))
    return _Outcome(changed=True, note=note)


def encode_tree(files: pd.DataFrame, redacted: Path, encoded: Path, quarantine_dir: Path,
                lossy_policy: str = "same", workers: int = 1) -> StepReport:
    """Redacted files back in their input's own transfer syntax. A file still in that syntax
    (not redacted, or natively stored from the start) is copied as it is."""
    started = time.perf_counter()
    syntax_of = dict(zip(files["output"], files["transfer_syntax"], strict=True))
    relpaths = [p.relative_to(redacted).as_posix() for p in sorted(redacted.rglob("*.dcm"))]
    report = StepReport(workers=max(1, min(workers, len(relpaths))))
    outcomes = _map(partial(_encode_file, redacted, encoded, lossy_policy),
                    [(relpath, syntax_of.get(relpath)) for relpath in relpaths], report.workers,
                    ENCODING_FAILED, encoded)
    _tally(report, relpaths, outcomes, redacted, quarantine_dir, started)
    return report
