"""De-identify a tree of files: outputs under pseudonymous paths, mapping files, audit table and
quarantine in a separate work folder.

Inputs are only read. Each output is written to a temporary name and renamed into place. A file
that cannot be de-identified is copied to the quarantine with a reason and never reaches the
output tree.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import struct
import time
from collections.abc import Collection, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.deid.engine import FileResult, TagEngine
from deid_pipeline.core.deid.identifiers import gather
from deid_pipeline.core.deid.leak_gate import LeakGate
from deid_pipeline.core.deid.method import record_pixels_cleaned
from deid_pipeline.core.discovery import FileKind, SourceFile, discover
from deid_pipeline.core.pixels.phi import ages_of
from deid_pipeline.core.pixels.stage import BoxFinding, PixelRedactor, PixelResult
from deid_pipeline.core.quarantine import OWNER_ONLY_DIR, OWNER_ONLY_FILE, quarantine_copy
from deid_pipeline.core.quiet import file_messages_muted
from deid_pipeline.core.slides.aperio import SlideError
from deid_pipeline.core.transcode import CodecError

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
    if isinstance(exc, EOFError | struct.error):
        return "truncated or malformed DICOM"
    if isinstance(exc, LookupError | UnicodeError):
        return f"unsupported or invalid value encoding ({type(exc).__name__})"
    return f"cannot be de-identified ({type(exc).__name__})"


def output_relpath(ds: pydicom.Dataset) -> str:
    patient = str(ds.get("PatientID", "") or "NO_PATIENT_ID")
    parts = (patient, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    *folders, name = (path_part(str(part)) for part in parts)
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
    then tags, then the leak gate on what was written."""
    with file_messages_muted():
        return _deidentify_file(source, engine, dst, redactor)


def _deidentify_file(source: SourceFile, engine: TagEngine, dst: Path,
                     redactor: PixelRedactor | None) -> FileOutcome:
    outcome = FileOutcome(relpath=source.relpath)
    try:
        if source.kind is FileKind.SLIDE:
            return _deidentify_slide(source, engine, dst, outcome)
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

        def write_checked(tmp: Path) -> None:
            # Judge what was written, read back, before the rename makes it visible.
            ds.save_as(tmp, enforce_file_format=True)
            written = pydicom.dcmread(tmp, stop_before_pixels=True)
            findings = LeakGate(known).findings(written, relpath, outcome.result.generated)
            if findings:
                raise QuarantineError("identifying value left: " + "; ".join(findings[:5]))

        write_atomically(dst / relpath, write_checked)
        outcome.output = relpath
    # Every failure of one file is that file's quarantine reason; the batch goes on.
    except Exception as exc:  # noqa: BLE001
        outcome.reason = reason_for(exc)
        outcome.result = None
    return outcome


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


_worker: tuple[TagEngine, PixelRedactor | None] | None = None


def _init_worker(engine: TagEngine, redactor: PixelRedactor | None) -> None:
    global _worker
    _worker = (engine, redactor)


def _work(args: tuple[SourceFile, Path]) -> FileOutcome:
    assert _worker is not None
    return deidentify_file(args[0], _worker[0], args[1], _worker[1])


def later_duplicates(sources: Iterable[SourceFile]) -> set[str]:
    """Relative paths of files whose SOP Instance UID an earlier file already has: written, the
    second would replace the first in the output tree."""
    seen, duplicates = set(), set()
    for source in sources:
        try:
            sop = pydicom.dcmread(source.path, stop_before_pixels=True, force=True,
                                  specific_tags=["SOPInstanceUID"]).get("SOPInstanceUID")
        except Exception:  # noqa: BLE001 - unreadable files are judged when processed
            continue
        if sop and sop in seen:
            duplicates.add(source.relpath)
        seen.add(sop)
    return duplicates


def deidentify_tree(src: Path, dst: Path, work: Path, engine: TagEngine,
                    jobs: int = 1, redactor: PixelRedactor | None = None,
                    kinds: Collection[FileKind] | None = None) -> BatchReport:
    """De-identify every input under src (or those of the given kinds); with a redactor,
    burned-in PHI too."""
    started = time.perf_counter()
    paths = WorkPaths(Path(work))
    paths.root.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIR)
    os.chmod(paths.root, OWNER_ONLY_DIR)  # it may exist already, made by someone else's umask
    every_source = [s for s in discover(src) if kinds is None or s.kind in kinds]
    duplicates = later_duplicates(every_source)
    sources = [s for s in every_source if s.relpath not in duplicates]
    if jobs > 1 and len(sources) > 1:
        with ProcessPoolExecutor(jobs, initializer=_init_worker,
                                 initargs=(engine, redactor)) as pool:
            outcomes = list(pool.map(_work, [(s, dst) for s in sources], chunksize=16))
    else:
        outcomes = [deidentify_file(s, engine, dst, redactor) for s in sources]

    uid_pairs, patid_pairs, audit_rows, reasons = [], [], [], {}
    file_rows, box_rows = [], []
    written = 0
    outcomes += [FileOutcome(s.relpath, reason="duplicate SOP Instance UID in this batch")
                 for s in every_source if s.relpath in duplicates]
    sources += [s for s in every_source if s.relpath in duplicates]
    for source, outcome in zip(sources, outcomes, strict=True):
        if outcome.reason is not None:
            reasons[outcome.reason] = reasons.get(outcome.reason, 0) + 1
            quarantine(source, outcome.reason, paths)
            continue
        written += 1
        result = outcome.result
        uid_pairs.extend(result.uid_map.items())
        if result.patient_id:
            patid_pairs.append(result.patient_id)
        # vars, not asdict: the rows are flat, and asdict deep-copies every field of every row.
        audit_rows.extend({"file": outcome.output, **vars(row)} for row in result.audit)
        pixels = outcome.pixels
        file_rows.append({"source": source.relpath, "output": outcome.output,
                          "transfer_syntax": outcome.syntax,
                          "pixels_changed": bool(pixels and pixels.changed),
                          "pixel_note": pixels.note if pixels else None})
        box_rows.extend(finding_row(outcome.output, f) for f in (pixels.findings if pixels else ()))

    write_mapping(paths.uid_mapping, uid_pairs)
    write_mapping(paths.patid_mapping, patid_pairs)
    audit = pd.DataFrame(audit_rows, columns=["file", "path", "tag", "keyword", "action", "rule"])
    write_atomically(paths.audit, lambda tmp: audit.to_parquet(tmp, index=False))
    write_table(paths.files, pd.DataFrame(file_rows, columns=FILE_COLUMNS))
    write_table(paths.pixel_findings, pd.DataFrame(box_rows, columns=FINDING_COLUMNS))
    return BatchReport(written=written, quarantined=sum(reasons.values()),
                       seconds=time.perf_counter() - started, work=paths, reasons=reasons,
                       actions={str(k): int(v) for k, v in audit["action"].value_counts().items()})
