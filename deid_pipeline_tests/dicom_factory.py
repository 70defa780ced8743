"""Small hand-built DICOM files for tests that need exact, known content."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    XRayAngiographicImageStorage,
)


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


# Unix time of 2012-01-03 10:11:12 UTC, the acquisition of `realistic_image`'s default study.
ACQUISITION_UNIX_TIME = 1325585472


@dataclass(frozen=True)
class Patient:
    """Identity written into a test file: every value here must be gone from the output."""

    name: str = "DOE^JANE^MARIE"
    patient_id: str = "MRN12345"
    sex: str = "F"
    birth_date: str = "19860315"
    address: str = "123 Main Street, Springfield"
    phone: str = "555-123-4567"


@dataclass(frozen=True)
class Study:
    study_uid: str = "1.2.826.0.1.3680043.9.7777.1"
    accession: str = "ACC4711"
    study_id: str = "STUDY9931"
    date: str = "20120103"
    institution: str = "Springfield General Hospital"
    referring: str = "HOUSE^GREGORY"
    operator: str = "SMITH^WAYLON"


def realistic_image(*, patient: Patient = Patient(), study: Study = Study(),
                    series_uid: str = "1.2.826.0.1.3680043.9.7777.2",
                    sop_uid: str = "1.2.826.0.1.3680043.9.7777.3.1", instance_number: int = 1,
                    sop_class: str = CTImageStorage, modality: str = "CT",
                    pixels: tuple[int, int] = (16, 16)) -> Dataset:
    """An image with the modules a scanner writes (about 100 elements, nested sequences, private
    blocks, an overlay and curve data) and PHI in the places it turns up in real files: names,
    IDs, dates, address, phone and institution, free text quoting them, a private element naming
    the patient and a GE private acquisition timestamp."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate, ds.InstanceCreationTime = study.date, "101530"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study.date
    ds.AcquisitionDateTime = f"{study.date}101112.250000+0100"
    ds.StudyTime, ds.SeriesTime, ds.AcquisitionTime, ds.ContentTime = (
        "101112", "101300", "101112.25", "101530")
    ds.AccessionNumber = study.accession
    ds.Modality = modality
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.InstitutionName = study.institution
    ds.InstitutionAddress = "1 Hospital Drive, Springfield"
    ds.ReferringPhysicianName = study.referring
    ds.ReferringPhysicianTelephoneNumbers = "555-987-6543"
    ds.StationName = "CTSTATION7"
    ds.StudyDescription = f"CT CHEST WITH CONTRAST {patient.name.split('^')[0]}"
    ds.ProcedureCodeSequence = Sequence([_code("77477000", "SCT", "CT of chest")])
    ds.SeriesDescription = "AXIAL 1.25 MM"
    ds.InstitutionalDepartmentName = "Radiology"
    ds.PerformingPhysicianName = "WILSON^JAMES"
    ds.OperatorsName = study.operator
    ds.ManufacturerModelName = "LightSpeed VCT"
    ds.ReferencedStudySequence = Sequence([_reference("1.2.840.10008.3.1.2.3.1",
                                                      study.study_uid + ".99")])
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = "SPRINGFIELD GENERAL"
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.OtherPatientIDs = patient.patient_id + "-OLD"
    ds.PatientAge = "025Y"
    ds.PatientSize, ds.PatientWeight = "1.68", "61.5"
    ds.PatientAddress = patient.address
    ds.PatientTelephoneNumbers = patient.phone
    ds.AdditionalPatientHistory = (f"follow-up of pulmonary nodule, 5 mm; prior CT "
                                   f"{_us_date(study.date)} at {study.institution}")
    ds.PatientComments = f"Patient {patient.name.replace('^', ' ')} called {patient.phone}"
    ds.ContrastBolusAgent = "IOHEXOL 350"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "1.25"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.DeviceSerialNumber = "SN-0042-XYZ"
    ds.SoftwareVersions = "07MW18.4"
    ds.ProtocolName = "CHEST WITH CONTRAST"
    ds.ReconstructionDiameter = "360"
    ds.DistanceSourceToDetector = "949.075"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150.5"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "1000"
    ds.XRayTubeCurrent = "250"
    ds.Exposure = "250"
    ds.FilterType = "BODY FILTER"
    ds.GeneratorPower = "30000"
    ds.FocalSpots = "0.7"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "FFS"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = 2, 1, instance_number
    ds.ImagePositionPatient = [-180.0, -180.0, -1.25 * instance_number]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = study.study_uid + ".4"
    ds.PositionReferenceIndicator = "SN"
    ds.SliceLocation = -1.25 * instance_number
    reader = study.operator.split("^")[0].title()
    ds.ImageComments = f"Read by Dr {reader} on {_us_date(study.date)}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels
    ds.PixelSpacing = [0.703125, 0.703125]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    request = Dataset()
    request.RequestedProcedureID = "RP-778"
    request.ScheduledProcedureStepID = "SPS-1212"
    request.ScheduledProcedureStepStartDate = _days_before(study.date, 7)
    request.RequestedProcedureDescription = "CT CHEST WITH CONTRAST"
    request.ReasonForTheRequestedProcedure = f"nodule seen on {_us_date(study.date)}"
    ds.RequestAttributesSequence = Sequence([request])
    ds.PerformedProcedureStepStartDate = study.date
    ds.PerformedProcedureStepID = "PPS-3434"
    ds.PerformedProcedureStepDescription = "CT CHEST"
    ge = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    ge.add_new(0x92, "SL", ACQUISITION_UNIX_TIME)
    acme = ds.private_block(0x0011, "ACME_PATIENT_01", create=True)
    acme.add_new(0x10, "LO", patient.name)
    overlay = ((0x0010, "US", pixels[0]), (0x0011, "US", pixels[1]), (0x0040, "CS", "G"),
               (0x0050, "SS", [1, 1]), (0x0100, "US", 1), (0x0102, "US", 0),
               (0x3000, "OW", bytes((pixels[0] * pixels[1] + 7) // 8)))
    for element, vr, value in overlay:
        ds.add_new(0x60000000 | element, vr, value)
    ds.add_new(0x50000005, "US", 1)  # Curve Dimensions (retired)
    ds.add_new(0x50003000, "OW", b"\x01\x00\x02\x00")  # Curve Data (retired)
    ds.PixelData = (np.arange(pixels[0] * pixels[1], dtype="<u2") % 4096).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.SourceApplicationEntityTitle = "CTSTATION7"
    return ds


def referencing_image(referenced: Dataset, *, patient: Patient = Patient(),
                      study: Study = Study(), sop_uid: str,
                      series_uid: str = "1.2.826.0.1.3680043.9.7777.5") -> Dataset:
    """An X-ray angiography image whose Referenced Image Sequence (type 1C in XA, so kept with
    new UIDs) points at `referenced`, of the same patient and study when given the same ones."""
    ds = realistic_image(patient=patient, study=study, sop_class=XRayAngiographicImageStorage,
                         modality="XA", series_uid=series_uid, sop_uid=sop_uid)
    ds.ReferencedImageSequence = Sequence([_reference(referenced.SOPClassUID,
                                                      referenced.SOPInstanceUID)])
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _reference(sop_class: str, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_uid
    return item


def _us_date(da: str) -> str:
    return f"{da[4:6]}/{da[6:8]}/{da[:4]}"


def _days_before(da: str, days: int) -> str:
    day = dt.date(int(da[:4]), int(da[4:6]), int(da[6:8])) - dt.timedelta(days=days)
    return day.strftime("%Y%m%d")


# Two patients whose every identifying value is easy to look for in raw output bytes: no name
# part occurs inside a name the fake-name generator can produce.
FIRST_PATIENT = Patient(name="VANTERPOOL^ZEPHYRINE^ODALYS", patient_id="PID-7001-VX", sex="F",
                        birth_date="19790228", address="48 Quillfeather Lane, Harrowgate",
                        phone="555-301-7788")
SECOND_PATIENT = Patient(name="BRIXHAMMER^THADDEUS", patient_id="PID-7002-BT", sex="M",
                         birth_date="19550611", address="9 Okonkwo Road, Harrowgate",
                         phone="555-302-9911")
FIRST_STUDY = Study(study_uid="1.2.826.0.1.3680043.9.7001.1", accession="ACC7001X",
                    study_id="ST7001", date="20150312", institution="Harrowgate Royal Infirmary",
                    referring="KESTERTON^PRUDENCE", operator="WHITLOCKE^BARNABY")
SECOND_STUDY = Study(study_uid="1.2.826.0.1.3680043.9.7002.1", accession="ACC7002X",
                     study_id="ST7002", date="20160921", institution="Harrowgate Royal Infirmary",
                     referring="KESTERTON^PRUDENCE", operator="WHITLOCKE^BARNABY")


def write_two_patient_tree(root: Path) -> dict[str, Dataset]:
    """Four good files by relative path: a two-image CT series of the first patient, an XA of the
    same study referencing the first image, and a CT of the second patient."""
    first = realistic_image(patient=FIRST_PATIENT, study=FIRST_STUDY,
                            series_uid="1.2.826.0.1.3680043.9.7001.2",
                            sop_uid="1.2.826.0.1.3680043.9.7001.3.1")
    files = {
        "first/ct/1.dcm": first,
        "first/ct/2.dcm": realistic_image(patient=FIRST_PATIENT, study=FIRST_STUDY,
                                          series_uid="1.2.826.0.1.3680043.9.7001.2",
                                          sop_uid="1.2.826.0.1.3680043.9.7001.3.2",
                                          instance_number=2),
        "first/xa/1.dcm": referencing_image(first, patient=FIRST_PATIENT, study=FIRST_STUDY,
                                            sop_uid="1.2.826.0.1.3680043.9.7001.5.1",
                                            series_uid="1.2.826.0.1.3680043.9.7001.4"),
        "second/IMG0001": realistic_image(patient=SECOND_PATIENT, study=SECOND_STUDY,
                                          series_uid="1.2.826.0.1.3680043.9.7002.2",
                                          sop_uid="1.2.826.0.1.3680043.9.7002.3.1"),
    }
    for relpath, ds in files.items():
        write(ds, root / relpath)
    return files
