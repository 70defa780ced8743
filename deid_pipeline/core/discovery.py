"""Find the input files of a drop folder and tell what each one is, without trusting names."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

DICOM_MAGIC_OFFSET = 128
DICOM_MAGIC = b"DICM"

# Files a site or this project's synthetic corpus leaves beside the images (ground truth, notes,
# reports). They are not inputs: skipping them keeps a drop folder's bookkeeping out of quarantine.
SIDECAR_SUFFIXES = frozenset(
    {".json", ".md", ".txt", ".csv", ".db", ".sqlite", ".xml", ".html", ".pdf", ".xlsx",
     ".parquet", ".yaml", ".yml", ".log"}
)
SLIDE_SUFFIXES = frozenset({".svs"})


class FileKind(str, Enum):
    DICOM = "dicom"
    SLIDE = "slide"
    # Neither magic nor a known suffix: maybe DICOM without a preamble, maybe junk. The reader
    # decides; nothing is dropped silently.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SourceFile:
    path: Path
    relpath: str
    kind: FileKind
    size: int


def has_dicom_magic(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(DICOM_MAGIC_OFFSET)
        return fh.read(len(DICOM_MAGIC)) == DICOM_MAGIC


def classify(path: Path) -> FileKind | None:
    """Kind of an input file, or None for a sidecar that is not an input at all."""
    suffix = path.suffix.lower()
    if suffix in SLIDE_SUFFIXES:
        return FileKind.SLIDE
    try:
        if has_dicom_magic(path):
            return FileKind.DICOM
    except OSError:
        return FileKind.UNKNOWN
    if suffix in SIDECAR_SUFFIXES:
        return None
    return FileKind.UNKNOWN


def discover(root: Path) -> Iterator[SourceFile]:
    """Every input file under `root`, in a stable order (sorted relative paths).

    Hidden files and folders (names starting with a dot) are skipped: they are partial uploads,
    sync tool temporaries or OS bookkeeping, never finished studies.
    """
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if not path.is_file():
                continue
            kind = classify(path)
            if kind is None:
                continue
            yield SourceFile(
                path=path,
                relpath=path.relative_to(root).as_posix(),
                kind=kind,
                size=path.stat().st_size,
            )
