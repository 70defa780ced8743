"""De-identify a tree of files: outputs under pseudonymous paths, mapping files, audit table and
quarantine in a separate work folder.

Inputs are only read. Each output is written to a temporary name and renamed into place. A file
that cannot be de-identified is copied to the quarantine with a reason and never reaches the
output tree.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import os
import re
import struct
import time
import zlib
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from deid_pipeline.core.atomic import remove_stale_temporaries, write_atomically, write_staged
from deid_pipeline.core.deid.audit import AuditWriter, audit_batch
from deid_pipeline.core.deid.engine import FileResult, TagEngine
from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.deid.leak_gate import LeakGate
from deid_pipeline.core.deid.stream_deid import deidentify_stream
from deid_pipeline.core.deid.method import record_pixels_cleaned
from deid_pipeline.core.deid.writer import write_dicom
from deid_pipeline.core.discovery import FileKind, SourceFile, discover
from deid_pipeline.core.pixels.ocr import Box
from deid_pipeline.core.pixels.phi import ages_of
from deid_pipeline.core.pixels.series import (SERIES_REASON, SeriesImage, hide_in_written,
                                              series_folder, shared_phi, single_frame)
from deid_pipeline.core.pixels.stage import BoxFinding, PixelRedactor, PixelResult
from deid_pipeline.core.quarantine import OWNER_ONLY_DIR, OWNER_ONLY_FILE, quarantine_copy
from deid_pipeline.core.quiet import file_messages_muted
from deid_pipeline.core.slides.aperio import SlideError
from deid_pipeline.core.transcode import CodecError
from deid_pipeline.core.workers import (
    DEADLINE_S,
    WORKER_DIED,
    WorkerPool,
    long_lived_frozen,
    worker_context,
)

# pydicom reads values larger than this only when writing them out: pixel data streams from the
# input to the output without being held per element.
DEFER_SIZE = "256 KB"
UNDEFINED_LENGTH = 0xFFFFFFFF
UNSAFE_PATH_CHARACTERS = re.compile(r"[^0-9A-Za-z._-]")


class QuarantineError(Exception):
    """A file that must not reach the output; the message is the reason, free of PHI."""


@dataclass(frozen=True)
class WorkPaths:
    root: Path

    @property
    def uid_mapping(self) -> Path:
        return self.root / "uid_mapping.csv"

    @property
    def patid_mapping(self) -> Path:
        return self.root / "patid_mapping.csv"

    @property
    def audit(self) -> Path:
        return self.root / "audit.parquet"

    @property
    def files(self) -> Path:
        """Input ↔ output of every written file (re-identifying: input paths can hold PHI)."""
        return self.root / "files.parquet"

    @property
    def pixel_findings(self) -> Path:
        return self.root / "pixel_findings.parquet"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"


@dataclass
class FileOutcome:
    relpath: str
    output: str | None = None  # relative to the output tree
    reason: str | None = None  # why it went to quarantine
    result: FileResult | None = None
    syntax: str = ""  # the input's transfer syntax
    pixels: PixelResult | None = None
    staged: Path | None = None  # the written output under a hidden temporary name
    instance: str | None = None  # the output's SOP Instance UID: one file per instance
    audit_rows: int = 0  # how many rows of its chunk's audit batch are this file's


@dataclass
class ChunkOutcome:
    """What a worker hands back for a chunk of files: each file's outcome, and the audit rows of
    the files it de-identified, in order, as one batch of columns."""
    files: list[FileOutcome]
    audit: pa.RecordBatch


@dataclass
class BatchReport:
    written: int
    quarantined: int
    seconds: float
    work: WorkPaths
    reasons: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)  # elements per action, all files

    def summary(self) -> str:
        line = f"{self.written} de-identified, {self.quarantined} quarantined in {self.seconds:.1f} s"
        if self.reasons:
            line += " (" + "; ".join(f"{n}× {r}" for r, n in sorted(self.reasons.items())) + ")"
        return line


def reason_for(exc: Exception) -> str:
    """A reason that names what went wrong without quoting the file (messages can hold PHI)."""
    if isinstance(exc, QuarantineError):
        return str(exc)
    if isinstance(exc, SlideError | CodecError):
        return str(exc) if isinstance(exc, SlideError) else (
            f"pixel data cannot be decoded or written back: {exc}")
    if isinstance(exc, InvalidDicomError):
        return "not a DICOM file"
    # pydicom's reader raises OSError without an errno where the data ends mid-element.
    if isinstance(exc, EOFError | struct.error) or (isinstance(exc, OSError) and exc.errno is None):
        return "truncated or malformed DICOM"
    if isinstance(exc, RecursionError):
        return "sequences nested too deep"
    if isinstance(exc, zlib.error):
        return "corrupt deflated data set"
    if isinstance(exc, NotImplementedError):
        return "malformed DICOM (unknown VR)"
    if isinstance(exc, LookupError | UnicodeError):
        return f"unsupported or invalid value encoding ({type(exc).__name__})"
    return f"cannot be de-identified ({type(exc).__name__})"


def output_relpath(ds: pydicom.Dataset) -> str:
    return relpath_of(str(ds.get("PatientID", "")), str(ds.StudyInstanceUID),
                      str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))


def relpath_of(patient: str, study: str, series: str, instance: str) -> str:
    """`<patient>/<study>/<series>/<instance>.dcm`, of the output's own (pseudonymous) values."""
    parts = (patient or "NO_PATIENT_ID", study, series, instance)
    *folders, name = (path_part(part) for part in parts)
    return "/".join(folders) + f"/{name}.dcm"


def path_part(value: str) -> str:
    """`value` as one folder or file name. A policy may keep a Patient ID, and retained UIDs
    may be malformed: a "/" or ".." in them must not lead outside the output tree."""
    return UNSAFE_PATH_CHARACTERS.sub("_", value).strip(".") or "_"


def last_value_cut_short(ds: pydicom.Dataset, path: Path) -> bool:
    """Whether the file ends inside its last element. pydicom reads a cut-off file without
    complaint, the last value (usually the pixel data) simply shorter than its declared length."""
    if not ds or ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return False  # a deflated dataset's offsets are not offsets into the file
    last = ds.get_item(max(ds.keys()), keep_deferred=True)
    if not isinstance(last, RawDataElement) or last.length == UNDEFINED_LENGTH:
        return False
    if last.value is None:  # deferred: only its place in the file was read
        return last.value_tell + last.length > path.stat().st_size
    return len(last.value) < last.length


def deidentify_file(source: SourceFile, engine: TagEngine, dst: Path,
                    redactor: PixelRedactor | None = None) -> FileOutcome:
    """Pixels first (the pixel stage matches burned-in text against the original tag values),
    then tags, then the leak gate on what was written. A DICOM output is left staged (complete,
    hidden): the batch makes it visible once it knows no earlier file claimed its SOP Instance UID."""
    with file_messages_muted():
        return _deidentify_file(source, engine, dst, redactor)


def deidentify_chunk(sources: list[SourceFile], engine: TagEngine, dst: Path,
                     redactor: PixelRedactor | None = None) -> ChunkOutcome:
    """`deidentify_file` for each source, the audit rows handed over once, as columns."""
    outcomes = [deidentify_file(source, engine, dst, redactor) for source in sources]
    done = [outcome for outcome in outcomes if outcome.result is not None]
    audit = audit_batch([(outcome.output, outcome.result.audit) for outcome in done])
    for outcome in done:
        outcome.audit_rows = len(outcome.result.audit)
        outcome.result.audit = []
    return ChunkOutcome(outcomes, audit)


def _deidentify_file(source: SourceFile, engine: TagEngine, dst: Path,
                     redactor: PixelRedactor | None) -> FileOutcome:
    outcome = FileOutcome(relpath=source.relpath)
    try:
        if source.refusal:
            raise QuarantineError(source.refusal)
        if source.kind is FileKind.SLIDE:
            return _deidentify_slide(source, engine, dst, outcome)
        if redactor is None and source.kind is FileKind.DICOM and \
                _deidentify_plain(source, engine, dst, outcome):
            return outcome
        ds = pydicom.dcmread(source.path, defer_size=DEFER_SIZE,
                             force=source.kind is FileKind.UNKNOWN)
        if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
            if source.kind is FileKind.UNKNOWN:
                raise QuarantineError("not a DICOM file (no DICM prefix, no SOP UIDs)")
            raise QuarantineError("missing SOP Instance UID or SOP Class UID")
        if last_value_cut_short(ds, source.path):
            raise QuarantineError("truncated file: the last element is cut short")
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
            if not ds.get(keyword):
                raise QuarantineError(f"missing {keyword}")
        known = gather(ds)
        outcome.syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
        if redactor is not None:
            outcome.pixels = redactor.redact(ds, known, sex=str(ds.get("PatientSex", "") or ""),
                                             ages=ages_of(ds))
        outcome.result = engine.deidentify(ds, known)
        if outcome.pixels is not None:
            record_pixels_cleaned(ds)
        relpath = output_relpath(ds)
        gate = LeakGate(known)
        path_findings = gate.path_findings(relpath)
        if path_findings:
            raise QuarantineError("identifying value left: " + "; ".join(path_findings[:5]))

        def write_checked(tmp: Path) -> None:
            # Judge what was written before anything makes it visible.
            if gate.may_leak(write_dicom(ds, tmp), ds.get("SpecificCharacterSet")):
                written = pydicom.dcmread(tmp, stop_before_pixels=True)
                findings = gate.findings(written, relpath, outcome.result.generated)
                if findings:
                    raise QuarantineError("identifying value left: " + "; ".join(findings[:5]))

        outcome.staged = write_staged(dst / relpath, write_checked)
        outcome.output = relpath
        outcome.instance = str(ds.SOPInstanceUID)
    # Every failure of one file is that file's quarantine reason; the batch goes on.
    except Exception as exc:  # noqa: BLE001
        outcome.reason = reason_for(exc)
        outcome.result = None
    return outcome


def _deidentify_plain(source: SourceFile, engine: TagEngine, dst: Path,
                      outcome: FileOutcome) -> bool:
    """Tags only, on the element stream (core.deid.stream_deid): the pydicom path's output,
    without its Datasets. False, with nothing done, for a file that is not plain."""
    try:
        plain = deidentify_stream(source.path.read_bytes(), engine)
    # Not plain, or something wrong with the file that the pydicom path meets again and names.
    except Exception:  # noqa: BLE001
        return False
    relpath = relpath_of(plain.patient, plain.study, plain.series, plain.instance)
    gate = LeakGate(plain.known)
    path_findings = gate.path_findings(relpath)
    if path_findings:
        raise QuarantineError("identifying value left: " + "; ".join(path_findings[:5]))

    def write_checked(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            handle.writelines(plain.parts)
        if gate.may_leak(plain.screened, plain.character_set):
            written = pydicom.dcmread(tmp, stop_before_pixels=True)
            findings = gate.findings(written, relpath, plain.result.generated)
            if findings:
                raise QuarantineError("identifying value left: " + "; ".join(findings[:5]))

    outcome.syntax = plain.syntax
    outcome.result = plain.result
    outcome.staged = write_staged(dst / relpath, write_checked)
    outcome.output = relpath
    outcome.instance = plain.instance
    return True


SLIDES_FOLDER = "slides"


def _deidentify_slide(source: SourceFile, engine: TagEngine, dst: Path,
                      outcome: FileOutcome) -> FileOutcome:
    """A whole-slide image: tiles copied as bytes, label and macro handled, identifying keys and
    tags removed, verified with OpenSlide before it becomes visible (core.slides)."""
    from deid_pipeline.core.slides.deidentify import deidentify_slide

    slide = deidentify_slide(source.path, dst / SLIDES_FOLDER, engine.policy.slides,
                             engine.pseudonymizer)
    outcome.output = slide.output.relative_to(dst).as_posix()
    outcome.result = FileResult(patient_id=slide.patient_id, audit=slide.audit)
    return outcome


def quarantine(source: SourceFile, reason: str, work: WorkPaths) -> None:
    """Named by a digest of its relative path: input names can hold PHI."""
    digest = hashlib.sha256(source.relpath.encode()).hexdigest()[:20]
    quarantine_copy(source.path, work.quarantine / f"{digest}.bin",
                    work.quarantine / f"{digest}.reason.txt", source.relpath, reason)


FILE_COLUMNS = ["source", "output", "transfer_syntax", "pixels_changed", "pixel_note"]
# Per box read in the pixels: where, why, how sure; never the text read.
FINDING_COLUMNS = ["file", "frames", "x1", "y1", "x2", "y2", "is_phi", "reason", "text_score"]


def finding_row(output: str, finding: BoxFinding) -> dict:
    x1, y1, x2, y2 = finding.box
    return {"file": output, "frames": ",".join(map(str, finding.frames)), "x1": x1, "y1": y1,
            "x2": x2, "y2": y2, "is_phi": finding.is_phi, "reason": finding.reason,
            "text_score": round(finding.text_score, 4)}


def write_table(path: Path, frame: pd.DataFrame) -> None:
    def write(tmp: Path) -> None:
        frame.to_parquet(tmp, index=False)
        os.chmod(tmp, OWNER_ONLY_FILE)

    write_atomically(path, write)


def write_mapping(path: Path, pairs: Iterable[tuple[str, str]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["id_old", "id_new"])
            out.writerows(sorted({(old, new) for old, new in pairs if old}))
        os.chmod(tmp, OWNER_ONLY_FILE)

    write_atomically(path, write)


_worker: tuple[TagEngine, Path, PixelRedactor | None] | None = None


def _init_worker(engine: TagEngine, dst: Path, redactor: PixelRedactor | None) -> None:
    global _worker
    _worker = (engine, dst, redactor)
    # The modules the server imported and the engine live as long as the worker: full
    # collections need not walk them (as core.workers.long_lived_frozen does for a batch).
    gc.freeze()


def _work(sources: list[SourceFile]) -> ChunkOutcome:
    assert _worker is not None
    return deidentify_chunk(sources, *_worker)


DUPLICATE = "duplicate SOP Instance UID in this batch"
DIED = f"cannot be de-identified: {WORKER_DIED}"


def _died(source: SourceFile) -> ChunkOutcome:
    """What stands for a file that killed the process de-identifying it, alone."""
    return ChunkOutcome([FileOutcome(source.relpath, reason=DIED)], audit_batch([]))


# Files a worker process takes at a time: enough to keep the hand-over cheap, few enough that
# the last chunks spread over the workers. On 16 processes, 16 files a chunk cost the batch's
# own process ~15 % less CPU than 8 and gave 3-7 % more files a second (benchmarks/README.md).
CHUNK = 16


def deidentify_tree(src: Path, dst: Path, work: Path, engine: TagEngine,
                    jobs: int = 1, redactor: PixelRedactor | None = None,
                    kinds: Collection[FileKind] | None = None,
                    deadline_s: float | None = DEADLINE_S) -> BatchReport:
    """De-identify every input under src (or those of the given kinds); with a redactor,
    burned-in PHI too, and once every file is written, the PHI a series shares on the images of
    the series where the OCR missed it (core.pixels.series).

    Outputs become visible here, in input order, as the workers hand them over: the first file
    with a SOP Instance UID is written, a later one with the same UID goes to quarantine. A file
    on which a worker process dies or stalls (core.workers.WorkerPool: over `deadline_s` on its
    chunk), alone too, goes to quarantine and the rest go on. The tables are written as the batch
    goes, so memory does not grow with the number of files."""
    started = time.perf_counter()
    paths = WorkPaths(Path(work))
    paths.root.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIR)
    os.chmod(paths.root, OWNER_ONLY_DIR)  # it may exist already, made by someone else's umask
    remove_stale_temporaries(dst)  # a killed run's staged files, never visible
    # The worker server imports the stage modules while the tree is listed, whole: the pool's
    # first worker waits for that import, and once the workers run, this process only hands
    # out chunks and tallies outcomes (listing as it went took its CPU from the tally).
    if jobs > 1:
        worker_context()
    sources = [s for s in discover(src) if kinds is None or s.kind in kinds]
    chunks = [sources[start:start + CHUNK] for start in range(0, len(sources), CHUNK)]
    tally = _Tally(paths)
    with long_lived_frozen(), AuditWriter(paths.audit) as audit:
        if jobs > 1 and len(sources) > 1:  # a single file is done here
            pool = WorkerPool(jobs, _init_worker, (engine, dst, redactor), deadline_s)
            for chunk, outcome in pool.map(_work, chunks, crashed=_died):
                tally.add(chunk, outcome, dst, audit)
            if pool.broken_pools:
                remove_stale_temporaries(dst)  # what the stopped workers had staged
        else:
            for chunk in chunks:
                tally.add(chunk, deidentify_chunk(chunk, engine, dst, redactor), dst, audit)
    actions = dict(audit.actions)  # counted as the rows are written, the last when it closed
    if redactor is not None:
        tally.hide_shared_phi(dst, redactor)
    tally.write()
    return BatchReport(written=tally.written, quarantined=sum(tally.reasons.values()),
                       seconds=time.perf_counter() - started, work=paths, reasons=tally.reasons,
                       actions=actions)


class _Tally:
    """What the batch keeps of each outcome: mapping pairs (a few per file, deduplicated), file
    and pixel rows, quarantine reasons."""

    def __init__(self, paths: WorkPaths) -> None:
        self.paths = paths
        self.instances: set[str] = set()
        self.uid_pairs: set[tuple[str, str]] = set()
        self.patid_pairs: set[tuple[str, str]] = set()
        self.file_rows: list[dict] = []
        self.box_rows: list[dict] = []
        self.reasons: dict[str, int] = {}
        self.written = 0
        self.sources: dict[str, SourceFile] = {}  # by output, of the DICOM files written

    def add(self, sources: list[SourceFile], chunk: ChunkOutcome, dst: Path,
            audit: AuditWriter) -> None:
        written = [self._add(source, outcome, dst)
                   for source, outcome in zip(sources, chunk.files, strict=True)]
        # The rows of a file found here to be a duplicate go with it.
        kept = np.repeat(written, [outcome.audit_rows for outcome in chunk.files])
        audit.add(chunk.audit if kept.all() else chunk.audit.filter(kept))

    def _add(self, source: SourceFile, outcome: FileOutcome, dst: Path) -> bool:
        """Whether the file was written: its output made visible, its pairs and rows kept."""
        if outcome.reason is None and outcome.instance is not None:
            if outcome.instance in self.instances:
                outcome.staged.unlink(missing_ok=True)
                outcome.reason = DUPLICATE
            else:
                self.instances.add(outcome.instance)
        if outcome.reason is not None:
            self.reasons[outcome.reason] = self.reasons.get(outcome.reason, 0) + 1
            quarantine(source, outcome.reason, self.paths)
            return False
        if outcome.staged is not None:
            os.replace(outcome.staged, dst / outcome.output)
        self.written += 1
        result = outcome.result
        self.uid_pairs.update(result.uid_map.items())
        if result.patient_id:
            self.patid_pairs.add(result.patient_id)
        pixels = outcome.pixels
        if outcome.syntax:
            self.sources[outcome.output] = source
        self.file_rows.append({"source": source.relpath, "output": outcome.output,
                               "transfer_syntax": outcome.syntax,
                               "pixels_changed": bool(pixels and pixels.changed),
                               "pixel_note": pixels.note if pixels else None})
        self.box_rows.extend(finding_row(outcome.output, f)
                             for f in (pixels.findings if pixels else ()))
        return True

    def hide_shared_phi(self, dst: Path, redactor: PixelRedactor) -> None:
        """PHI a series shares (core.pixels.series), hidden in the written images that hold it
        too: read on most images of a series, missed by the OCR on the others. The templates
        come from the inputs, where the text is still there. A file that cannot be written
        again leaves the output for the quarantine."""
        phi: dict[str, list[Box]] = defaultdict(list)
        for row in self.box_rows:
            if row["is_phi"]:
                phi[row["file"]].append((row["x1"], row["y1"], row["x2"], row["y2"]))
        shared = shared_phi([SeriesImage(output, series_folder(output), tuple(phi[output]))
                             for output in self.sources],
                            lambda output: single_frame(self.sources[output].path),
                            lambda output: single_frame(dst / output))
        for output, found in shared.items():
            row = next(row for row in self.file_rows if row["output"] == output)
            try:
                note = hide_in_written(dst / output, [box for box, _ in found], redactor)
            except Exception as exc:  # noqa: BLE001 - the file's own failure, not the batch's
                (dst / output).unlink()
                self.file_rows.remove(row)
                self.box_rows = [r for r in self.box_rows if r["file"] != output]
                self.written -= 1
                reason = f"series pass: {reason_for(exc)}"
                self.reasons[reason] = self.reasons.get(reason, 0) + 1
                quarantine(self.sources[output], reason, self.paths)
                continue
            row["pixels_changed"] = True
            row["pixel_note"] = row["pixel_note"] or note
            self.box_rows.extend(finding_row(output, BoxFinding((), box, True, SERIES_REASON,
                                                                correlation))
                                 for box, correlation in found)

    def write(self) -> None:
        write_mapping(self.paths.uid_mapping, self.uid_pairs)
        write_mapping(self.paths.patid_mapping, self.patid_pairs)
        write_table(self.paths.files, pd.DataFrame(self.file_rows, columns=FILE_COLUMNS))
        write_table(self.paths.pixel_findings, pd.DataFrame(self.box_rows, columns=FINDING_COLUMNS))
