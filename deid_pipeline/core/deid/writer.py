"""Write a de-identified dataset and keep, for the leak gate, every byte written except the pixel
data value: scanning those bytes is how the gate reads back what was written without parsing the
file again (parsing and decoding every element costs more than de-identifying it)."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO, DicomFileLike
from pydicom.filewriter import dcmwrite, write_dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

PIXEL_DATA = 0x7FE00010


def write_dicom(ds: Dataset, path: Path) -> bytes | None:
    """Write `ds` in the DICOM file format at `path`, byte for byte what `ds.save_as(path,
    enforce_file_format=True)` writes. Returns the written bytes minus the pixel data value, or
    None when the transfer syntax deflates the data set (the bytes say nothing readable then)."""
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if syntax == DeflatedExplicitVRLittleEndian or not syntax.is_transfer_syntax:
        ds.save_as(path, enforce_file_format=True)
        return None
    # Slices keep elements as read (raw ones stay raw) with the data set's encoding and charset.
    head = ds[:PIXEL_DATA]
    head.file_meta = ds.file_meta
    head.preamble = ds.preamble
    head_buffer = DicomBytesIO()
    dcmwrite(head_buffer, head, enforce_file_format=True)
    head_bytes = head_buffer.getvalue()
    after_bytes = _encoded(ds[PIXEL_DATA + 1:], syntax)
    pixels = ds[PIXEL_DATA:PIXEL_DATA + 1]
    if PIXEL_DATA in pixels and not pixels.get_item(PIXEL_DATA, keep_deferred=True).is_raw:
        # As dcmwrite does: encapsulated pixel data is written with an undefined length.
        pixels[PIXEL_DATA].is_undefined_length = syntax.is_compressed
    with path.open("wb") as handle:
        handle.write(head_bytes)
        out = DicomFileLike(handle)
        out.is_little_endian, out.is_implicit_VR = syntax.is_little_endian, syntax.is_implicit_VR
        write_dataset(out, pixels)
        handle.write(after_bytes)
    return head_bytes + after_bytes


def _encoded(ds: Dataset, syntax: UID) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = syntax.is_little_endian, syntax.is_implicit_VR
    write_dataset(buffer, ds)
    return buffer.getvalue()
