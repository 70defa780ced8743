"""The manifest of a drop folder: one row per input file with what its header says."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

from deid_pipeline.core.discovery import FileKind, SourceFile, discover
from deid_pipeline.core.quiet import file_messages_muted

MANIFEST_COLUMNS = (
    "relpath", "kind", "size", "sha256", "readable", "reason",
    "modality", "sop_class_uid", "transfer_syntax_uid", "number_of_frames",
)
# Enough of the header to describe a file in the manifest without parsing the whole dataset.
HEADER_TAGS = ["Modality", "SOPClassUID", "NumberOfFrames"]


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe(source: SourceFile) -> dict:
    """One manifest row. A file that does not parse is kept with the reason, never dropped.

    Reasons name the failure's kind only: parser messages can quote values from the file.
    """
    row = dict.fromkeys(MANIFEST_COLUMNS)
    row.update(relpath=source.relpath, kind=source.kind.value, size=source.size,
               readable=True, reason=None)
    if source.refusal:
        row.update(readable=False, reason=source.refusal)
        return row
    row["sha256"] = sha256_of(source.path)
    if source.kind is FileKind.SLIDE:
        return row
    try:
        ds = pydicom.dcmread(source.path, stop_before_pixels=True, specific_tags=HEADER_TAGS,
                             force=source.kind is FileKind.UNKNOWN)
        if "SOPClassUID" not in ds and "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
            raise InvalidDicomError("no DICOM header")
        row.update(
            kind=FileKind.DICOM.value,
            modality=str(ds.get("Modality", "")) or None,
            sop_class_uid=str(ds.get("SOPClassUID", "")) or None,
            transfer_syntax_uid=str(ds.file_meta.get("TransferSyntaxUID", "")) or None,
            number_of_frames=int(ds.get("NumberOfFrames") or 1),
        )
    # Any parser failure: one broken file must never stop the inventory of the others.
    except Exception as exc:  # noqa: BLE001
        row.update(readable=False, reason=f"not readable as DICOM ({type(exc).__name__})")
    return row


def build_manifest(root: Path) -> pd.DataFrame:
    with file_messages_muted():
        rows = [describe(source) for source in discover(root)]
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
