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
    # Why the file must not be opened at all (see `refusal_of`); None for an input to read.
    refusal: str | None = None


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


def refusal_of(path: Path, real_root: Path) -> str | None:
    """Why `path` must not be read, or None. The drop folder is what a site handed over: a
    symbolic link out of it would feed the pipeline (and its quarantine) someone else's file, a
    folder link is not followed (links can loop), and a dangling link or a file without read
    permission has nothing to read; nor has a folder that may not be listed or entered (its
    files would otherwise be neither de-identified nor quarantined, without a trace)."""
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except FileNotFoundError:
            return "dangling symbolic link"
        except (OSError, RuntimeError):  # RuntimeError: a loop of links (Python < 3.13)
            return "symbolic link that cannot be resolved"
        if not target.is_relative_to(real_root):
            return "symbolic link leading outside the input folder"
        if target.is_dir():
            return "symbolic link to a folder (not followed)"
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            return "folder cannot be read (permission denied)"
        return None
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def text_of(name: str) -> str:
    """A file name as text that any table or digest takes: bytes that are not UTF-8 (a name from
    a Latin-1 era export) are written as \\xNN escapes instead of Python's lone surrogates."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def discover(root: Path) -> Iterator[SourceFile]:
    """Every input file under `root`, in a stable order (sorted relative paths).

    Hidden files and folders (names starting with a dot) are skipped: they are partial uploads,
    sync tool temporaries or OS bookkeeping, never finished studies. So are FIFOs, sockets and
    devices: opening a FIFO blocks until someone writes to it. Links, unreadable files and
    folders that cannot be read are listed with their refusal and never opened.
    """
    root = Path(root)
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        folder = Path(dirpath)
        visible = sorted(d for d in dirnames if not d.startswith("."))
        # os.walk lists a link to a folder among the folders, and does not enter it.
        folder_links = [d for d in visible if (folder / d).is_symlink()]
        closed = [d for d in visible if d not in folder_links
                  and refusal_of(folder / d, real_root) is not None]
        dirnames[:] = [d for d in visible if d not in folder_links and d not in closed]
        for name in sorted(filenames + folder_links + closed):
            if name.startswith("."):
                continue
            path = folder / name
            refusal = refusal_of(path, real_root)
            if refusal is None and not path.is_file():
                continue
            kind = FileKind.UNKNOWN if refusal else classify(path)
            if kind is None or (refusal and path.suffix.lower() in SIDECAR_SUFFIXES):
                continue
            yield SourceFile(
                path=path,
                relpath=text_of(path.relative_to(root).as_posix()),
                kind=kind,
                size=(path.lstat() if refusal else path.stat()).st_size,
                refusal=refusal,
            )
