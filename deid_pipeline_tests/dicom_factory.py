"""Small hand-built DICOM files for tests that need exact, known content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID


def ct_with_nested_and_private() -> Dataset:
    """A tiny CT image with a two-level sequence and a private block naming the patient."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.1"
    ds.StudyInstanceUID = "1.2.3.4.5.6.7.2"
    ds.SeriesInstanceUID = "1.2.3.4.5.6.7.3"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "MRN12345"
    ds.Modality = "CT"
    code = Dataset()
    code.CodeValue = "CTCHEST"
    code.CodingSchemeDesignator = "99LOCAL"
    code.CodeMeaning = "CT chest"
    request = Dataset()
    request.RequestedProcedureID = "RP-778"
    request.ScheduledProtocolCodeSequence = Sequence([code])
    ds.RequestAttributesSequence = Sequence([request])
    block = ds.private_block(0x0011, "ACME_PATIENT_01", create=True)
    block.add_new(0x10, "LO", "DOE^JANE")
    ds.Rows, ds.Columns = 4, 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.arange(16, dtype="<u2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
