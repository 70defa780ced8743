"""The DICOM dataset of one planned instance: its IOD's modules, PHI wherever real files carry it,
and a fact for every element written, which the answer key is built from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

import pydicom
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from deid_pipeline.core.codecs import encode_pixels
from deid_pipeline.core.synth import free_text
from deid_pipeline.core.synth.facts import (
    BurnedLine,
    ElementFact,
    FreeText,
    InstanceFacts,
    ItemStep,
    Role,
)
from deid_pipeline.core.synth.identities import StaffMember
from deid_pipeline.core.synth.pixels import CT_PADDING, PALETTE_BITS, palette_tables
from deid_pipeline.core.synth.plan import InstancePlan, SeriesPlan, StudyPlan
from deid_pipeline.core.synth.rendering import RenderedImage

# PS3.4 (retired) Detached Study Management SOP Class: what Referenced Study Sequence items cite.
STUDY_REFERENCE_CLASS = "1.2.840.10008.3.1.2.3.1"
CT_RESCALE_INTERCEPT = -1024
GE_ACQUISITION = (0x0019, "GEMS_ACQU_01")
# An SL element of GE's acquisition block (pydicom's private dictionary agrees on SL, so implicit
# VR files read back typed) holding the acquisition time in seconds since 1970: the kind of value
# the source system's shiftUnixTimeStampRandom action exists for.
GE_TIMESTAMP_OFFSET = 0x92
GE_FRAME_OF_REFERENCE_OFFSET = 0x0F
PACS_DEMOGRAPHICS = (0x0033, "SITE_PACS_DEMOGRAPHICS")  # a PACS copy of the patient's identity
SITE_PROTOCOL = (0x0031, "SITE_PROTOCOL_01")  # the site's protocol code: nothing identifying
PIXEL_DESCRIPTION = ("SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration",
                     "NumberOfFrames", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                     "PixelRepresentation")
FRAME_TIME_TAG = Tag("FrameTime")
# Modalities whose IODs have the Frame of Reference and Image Plane modules.
CROSS_SECTIONAL = ("CT", "MR")
# The modality's identifier of the device part that took the image (PS3.15 E.1-1: remove).
DEVICE_ID_KEYWORDS = {"CT": "GantryID", "CR": "PlateID", "DX": "DetectorID", "MG": "DetectorID"}
CODES = {  # SNOMED CT codes of the views and regions the IODs ask for
    "CC": ("399162004", "cranio-caudal"),
    "MLO": ("399368009", "medio-lateral oblique"),
    "HAND": ("85562004", "Hand"),
    "BREAST": ("76752008", "Breast"),
}


@dataclass(frozen=True)
class BuiltInstance:
    dataset: Dataset
    facts: InstanceFacts


class ElementWriter:
    """Sets elements on a dataset (or sequence item) and records each as a fact."""

    def __init__(self, ds: Dataset, facts: list[ElementFact],
                 path: tuple[ItemStep, ...] = ()) -> None:
        self.ds, self._facts, self._path = ds, facts, path

    def set(self, keyword: str, value: object, role: Role = Role.UNCHECKED) -> None:
        setattr(self.ds, keyword, value)
        self.record(keyword, role)

    def text(self, keyword: str, value: FreeText) -> None:
        setattr(self.ds, keyword, str(value))
        elem = self.ds[keyword]
        self._facts.append(ElementFact(self._path, int(elem.tag), keyword, str(value),
                                       Role.FREE_TEXT, free_text=value))

    def record(self, keyword: str, role: Role) -> None:
        """Record an element already on the dataset."""
        elem = self.ds[keyword]
        self._facts.append(ElementFact(self._path, int(elem.tag), keyword,
                                       _value_text(elem.value), role))

    def items(self, keyword: str, count: int = 1) -> list[ElementWriter]:
        items = [Dataset() for _ in range(count)]
        setattr(self.ds, keyword, Sequence(items))
        tag = int(self.ds[keyword].tag)
        return [ElementWriter(item, self._facts, (*self._path, ItemStep(tag, index)))
                for index, item in enumerate(items)]

    def private(self, block: tuple[int, str], offset: int, vr: str, value: object, name: str,
                role: Role = Role.UNCHECKED) -> None:
        group, creator = block
        private = self.ds.private_block(group, creator, create=True)
        private.add_new(offset, vr, value)
        elem = private[offset]
        self._facts.append(ElementFact(self._path, int(elem.tag), name, _value_text(elem.value),
                                       role, private_creator=creator))


def _value_text(value: object) -> str:
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(item) for item in value)
    return "" if value is None else str(value)


def _da(day: date | datetime) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _tm(moment: datetime) -> str:
    return f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"


def _dt(moment: datetime) -> str:
    return _da(moment) + _tm(moment)


def build_instance(study: StudyPlan, series: SeriesPlan, instance: InstancePlan,
                   image: RenderedImage) -> BuiltInstance:
    ds = Dataset()
    facts: list[ElementFact] = []
    writer = ElementWriter(ds, facts)
    template = series.template
    writer.set("SpecificCharacterSet", study.patient.character_set)
    _sop_common(writer, series, instance)
    _patient(writer, study)
    _patient_study(writer, study)
    _general_study(writer, study)
    _general_series(writer, study, series)
    _general_equipment(writer, study, series)
    _general_image(writer, study, series, instance, image)
    if template.modality in CROSS_SECTIONAL:
        writer.set("FrameOfReferenceUID", study.frame_of_reference_uid, Role.UID)
        writer.set("PositionReferenceIndicator", "")
        _image_plane(writer, series, instance)
    MODALITY_MODULES[template.modality](writer, study, series, instance)
    if template.window is not None:
        writer.set("WindowCenter", template.window[0], Role.RETAINED)
        writer.set("WindowWidth", template.window[1], Role.RETAINED)
    _private_blocks(writer, study, series, instance)

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = template.sop_class_uid
    ds.file_meta.MediaStorageSOPInstanceUID = instance.sop_instance_uid
    ds.file_meta.ImplementationClassUID = uid.PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"
    ds.update(series.pixels.describe())
    if series.pixels.photometric == "PALETTE COLOR":
        _palette(ds)
    encode_pixels(ds, image.pixels, series.transfer_syntax)
    for keyword in PIXEL_DESCRIPTION:
        if keyword in ds:
            writer.record(keyword, Role.RETAINED)
    return BuiltInstance(ds, InstanceFacts(
        sop_instance_uid=instance.sop_instance_uid,
        study_instance_uid=study.study_instance_uid,
        series_instance_uid=series.series_instance_uid,
        modality=template.modality,
        sop_class_uid=template.sop_class_uid,
        patient_id=study.patient.patient_id,
        elements=tuple(facts),
        pixel_data_md5=hashlib.md5(ds.PixelData).hexdigest(),
        burned_phi=tuple(
            BurnedLine(line.text, line.bbox[:2], line.bbox[2:]) for line in image.lines
            if line.is_phi
        ),
    ))


def _sop_common(writer: ElementWriter, series: SeriesPlan, instance: InstancePlan) -> None:
    writer.set("SOPClassUID", series.template.sop_class_uid, Role.RETAINED)
    writer.set("SOPInstanceUID", instance.sop_instance_uid, Role.UID)
    writer.set("InstanceCreationDate", _da(instance.acquired), Role.DATE)
    writer.set("InstanceCreationTime", _tm(instance.acquired))
    writer.set("TimezoneOffsetFromUTC", "-0500")


def _patient(writer: ElementWriter, study: StudyPlan) -> None:
    patient, institution = study.patient, study.institution
    writer.set("PatientName", patient.person.dicom_name, Role.PSEUDONYM)
    writer.set("PatientID", patient.patient_id, Role.PATIENT_ID)
    writer.set("IssuerOfPatientID", f"{institution.code} MRN", Role.IDENTIFYING)
    writer.set("PatientBirthDate", _da(patient.birth_date), Role.DATE)
    writer.set("PatientSex", patient.sex)
    writer.set("OtherPatientIDs", patient.other_patient_id, Role.IDENTIFYING)
    (other,) = writer.items("OtherPatientIDsSequence")
    other.set("PatientID", patient.other_patient_id, Role.IDENTIFYING)
    other.set("IssuerOfPatientID", "SSA", Role.UNCHECKED)
    other.set("TypeOfPatientID", "TEXT")
    writer.set("OtherPatientNames", f"{patient.mother_birth_name.family}^{patient.person.given}",
               Role.IDENTIFYING)
    writer.set("PatientMotherBirthName", patient.mother_birth_name.dicom_name, Role.IDENTIFYING)
    writer.set("PatientAddress", patient.address, Role.IDENTIFYING)
    writer.set("PatientTelephoneNumbers", patient.phone, Role.IDENTIFYING)
    writer.set("EthnicGroup", patient.ethnic_group)
    writer.text("PatientComments", study.patient_comments)


def _patient_study(writer: ElementWriter, study: StudyPlan) -> None:
    born, day = study.patient.birth_date, study.started.date()
    years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    writer.set("PatientAge", f"{years:03d}Y")
    writer.set("PatientSize", f"{study.patient.height_m:.2f}")
    writer.set("PatientWeight", f"{study.patient.weight_kg:.1f}")
    writer.text("AdditionalPatientHistory", study.history)
    # Visit Identification: not part of the image IODs, but RIS interfaces copy it in.
    writer.set("AdmissionID", study.admission_id, Role.IDENTIFYING)
    writer.text("AdmittingDiagnosesDescription", free_text.clinical(study.protocol.indication))


def _identification(writer: ElementWriter, keyword: str, staff: list[StaffMember],
                    study: StudyPlan) -> None:
    """Person Identification Macro items: IDs, names, institution and contact of staff."""
    for item, member in zip(writer.items(keyword, len(staff)), staff):
        (code,) = item.items("PersonIdentificationCodeSequence")
        code.set("CodeValue", member.staff_id, Role.IDENTIFYING)
        code.set("CodingSchemeDesignator", "L")
        code.set("CodeMeaning", member.person.spoken, Role.IDENTIFYING)
        item.set("InstitutionName", study.institution.name, Role.IDENTIFYING)
        item.set("PersonTelephoneNumbers", member.phone, Role.IDENTIFYING)


def _general_study(writer: ElementWriter, study: StudyPlan) -> None:
    writer.set("StudyInstanceUID", study.study_instance_uid, Role.UID)
    writer.set("StudyDate", _da(study.started), Role.DATE)
    writer.set("StudyTime", _tm(study.started))
    writer.set("ReferringPhysicianName", study.referring.person.dicom_name, Role.IDENTIFYING)
    _identification(writer, "ReferringPhysicianIdentificationSequence", [study.referring], study)
    writer.set("StudyID", study.study_id, Role.IDENTIFYING)
    writer.set("AccessionNumber", study.accession_number, Role.IDENTIFYING)
    writer.text("StudyDescription", study.description)
    writer.set("PhysiciansOfRecord", study.referring.person.dicom_name, Role.IDENTIFYING)
    _identification(writer, "PhysiciansOfRecordIdentificationSequence", [study.referring], study)
    writer.set("NameOfPhysiciansReadingStudy", study.reading.person.dicom_name, Role.IDENTIFYING)
    _identification(writer, "PhysiciansReadingStudyIdentificationSequence", [study.reading],
                    study)
    writer.set("RequestingPhysician", study.requesting.person.dicom_name, Role.IDENTIFYING)
    (procedure,) = writer.items("ProcedureCodeSequence")
    procedure.set("CodeValue", study.protocol.procedure_code)
    procedure.set("CodingSchemeDesignator", "L")
    procedure.text("CodeMeaning", free_text.clinical(study.protocol.description))
    if study.prior_study_uid is not None:
        (reference,) = writer.items("ReferencedStudySequence")
        reference.set("ReferencedSOPClassUID", STUDY_REFERENCE_CLASS)
        reference.set("ReferencedSOPInstanceUID", study.prior_study_uid, Role.UID)


def _general_series(writer: ElementWriter, study: StudyPlan, series: SeriesPlan) -> None:
    template = series.template
    writer.set("Modality", template.modality, Role.REQUIRED)
    writer.set("SeriesInstanceUID", series.series_instance_uid, Role.UID)
    writer.set("SeriesNumber", template.number, Role.RETAINED)
    writer.set("SeriesDate", _da(series.started), Role.DATE)
    writer.set("SeriesTime", _tm(series.started))
    writer.set("PerformingPhysicianName",
               [member.person.dicom_name for member in series.performing], Role.IDENTIFYING)
    _identification(writer, "PerformingPhysicianIdentificationSequence", list(series.performing),
                    study)
    writer.set("OperatorsName", [member.person.dicom_name for member in series.operators],
               Role.IDENTIFYING)
    _identification(writer, "OperatorIdentificationSequence", list(series.operators), study)
    writer.text("ProtocolName", free_text.clinical(template.description))
    writer.text("SeriesDescription", series.description)
    writer.set("BodyPartExamined", study.protocol.body_part, Role.RETAINED)
    if template.modality in CROSS_SECTIONAL:
        writer.set("PatientPosition", "HFS")
    writer.set("PerformedProcedureStepStartDate", _da(series.started), Role.DATE)
    writer.set("PerformedProcedureStepStartTime", _tm(series.started))
    writer.set("PerformedProcedureStepID", series.performed_step_id, Role.IDENTIFYING)
    writer.text("PerformedProcedureStepDescription", free_text.clinical(study.protocol.description))
    (request,) = writer.items("RequestAttributesSequence")
    request.set("RequestedProcedureID", study.requested_procedure_id, Role.IDENTIFYING)
    request.set("ScheduledProcedureStepID", study.scheduled_step_id, Role.IDENTIFYING)
    request.set("AccessionNumber", study.accession_number, Role.IDENTIFYING)
    request.set("StudyInstanceUID", study.study_instance_uid, Role.UID)
    request.text("RequestedProcedureDescription", free_text.clinical(study.protocol.description))
    request.text("ReasonForTheRequestedProcedure", study.reason)
    request.text("ScheduledProcedureStepDescription", free_text.clinical(template.description))
    # Not in the Request Attributes Macro, but worklist brokers copy it there.
    request.set("ScheduledProcedureStepStartDate", _da(study.started), Role.DATE)
    (protocol,) = request.items("ScheduledProtocolCodeSequence")
    protocol.set("CodeValue", f"{study.protocol.procedure_code}-{template.number}")
    protocol.set("CodingSchemeDesignator", "L")
    protocol.text("CodeMeaning", free_text.clinical(template.description))


def _general_equipment(writer: ElementWriter, study: StudyPlan, series: SeriesPlan) -> None:
    institution = study.institution
    writer.set("Manufacturer", series.template.manufacturer, Role.RETAINED)
    writer.set("InstitutionName", institution.name, Role.IDENTIFYING)
    writer.set("InstitutionAddress", institution.address, Role.IDENTIFYING)
    writer.set("StationName", series.station_name, Role.IDENTIFYING)
    writer.set("InstitutionalDepartmentName", institution.department, Role.IDENTIFYING)
    writer.set("ManufacturerModelName", series.template.model, Role.RETAINED)
    writer.set("DeviceSerialNumber", series.device_serial_number, Role.IDENTIFYING)
    writer.set("SoftwareVersions", "5.2.1", Role.RETAINED)
    device_id = DEVICE_ID_KEYWORDS.get(series.template.modality)
    if device_id is not None:
        writer.set(device_id, f"{device_id[:2].upper()}{series.device_serial_number[-6:]}",
                   Role.IDENTIFYING)


def _general_image(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
                   instance: InstancePlan, image: RenderedImage) -> None:
    template = series.template
    writer.set("InstanceNumber", instance.number, Role.RETAINED)
    if template.modality not in CROSS_SECTIONAL:
        writer.set("PatientOrientation", ["A", "F"] if template.modality != "MG" else ["P", "L"])
    writer.set("ContentDate", _da(instance.acquired), Role.DATE)
    writer.set("ContentTime", _tm(instance.acquired))
    writer.set("ImageType", list(template.image_type), Role.RETAINED)
    writer.set("AcquisitionNumber", 1)
    writer.set("AcquisitionDate", _da(instance.acquired), Role.DATE)
    writer.set("AcquisitionTime", _tm(instance.acquired))
    writer.set("AcquisitionDateTime", _dt(instance.acquired), Role.DATE)
    writer.text("ImageComments", study.image_comments)
    writer.set("BurnedInAnnotation", "YES" if any(line.is_phi for line in image.lines) else "NO")
    if template.localizer_key is not None:
        _references(writer, "ReferencedImageSequence",
                    study.series_by_key(template.localizer_key), None)
    if template.source_key is not None:
        _references(writer, "SourceImageSequence", study.series_by_key(template.source_key),
                     instance.number)
        writer.text("DerivationDescription", free_text.clinical("reconstructed from source images"))
    if template.referenced_series_key is not None:
        referenced = study.series_by_key(template.referenced_series_key)
        (item,) = writer.items("ReferencedSeriesSequence")
        item.set("SeriesInstanceUID", referenced.series_instance_uid, Role.UID)
        _references(item, "ReferencedInstanceSequence", referenced, None)


def _references(writer: ElementWriter, keyword: str, referenced: SeriesPlan,
                number: int | None) -> None:
    """Items citing images of another series: the one with the same number, or its first few."""
    matching = [i for i in referenced.instances if i.number == number]
    cited = matching or list(referenced.instances[:3])
    for item, target in zip(writer.items(keyword, len(cited)), cited):
        item.set("ReferencedSOPClassUID", referenced.template.sop_class_uid)
        item.set("ReferencedSOPInstanceUID", target.sop_instance_uid, Role.UID)


def _image_plane(writer: ElementWriter, series: SeriesPlan, instance: InstancePlan) -> None:
    template, spec = series.template, series.pixels
    spacing = template.pixel_spacing_mm
    thickness = template.slice_thickness_mm or spacing
    level = round(-120 + instance.number * thickness, 2)
    sagittal = template.anatomy.endswith("sagittal")
    writer.set("PixelSpacing", [spacing, spacing], Role.RETAINED)
    writer.set("ImageOrientationPatient", [0, 1, 0, 0, 0, -1] if sagittal else [1, 0, 0, 0, 1, 0])
    origin = (-spec.columns * spacing / 2, -spec.rows * spacing / 2)
    position = [level, *origin] if sagittal else [*origin, level]
    writer.set("ImagePositionPatient", [round(v, 2) for v in position])
    writer.set("SliceThickness", thickness, Role.RETAINED)
    writer.set("SliceLocation", level)


def _exposure(writer: ElementWriter, series: SeriesPlan) -> None:
    writer.set("IrradiationEventUID", series.irradiation_event_uid, Role.UID)
    writer.set("KVP", series.kvp, Role.RETAINED)
    writer.set("Exposure", series.exposure_mas, Role.RETAINED)
    writer.set("ExposureTime", 500)
    writer.set("XRayTubeCurrent", series.exposure_mas * 2)


def _ct(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
        instance: InstancePlan) -> None:
    _exposure(writer, series)
    writer.set("RescaleIntercept", CT_RESCALE_INTERCEPT, Role.RETAINED)
    writer.set("RescaleSlope", 1, Role.RETAINED)
    writer.set("RescaleType", "HU")
    writer.set("ConvolutionKernel", "LUNG" if "LUNG" in series.template.description else "STANDARD")
    writer.set("DataCollectionDiameter", 500)
    writer.set("ReconstructionDiameter", round(series.pixels.columns
                                               * series.template.pixel_spacing_mm, 1))
    writer.set("GantryDetectorTilt", 0)
    writer.set("RotationDirection", "CW")
    if series.pixels.signed:
        writer.set("PixelPaddingValue", CT_PADDING)


def _mr(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
        instance: InstancePlan) -> None:
    repetition, echo = series.template.mr_timing
    writer.set("ScanningSequence", "SE" if repetition > 100 else "GR")
    writer.set("SequenceVariant", "SK")
    writer.set("ScanOptions", "")
    writer.set("MRAcquisitionType", "2D")
    writer.set("RepetitionTime", repetition, Role.RETAINED)
    writer.set("EchoTime", echo, Role.RETAINED)
    writer.set("EchoTrainLength", 16 if repetition > 1000 else 1)
    writer.set("MagneticFieldStrength", 3, Role.RETAINED)
    writer.set("ImagingFrequency", 127.74)
    writer.set("ImagedNucleus", "1H")
    writer.set("SpacingBetweenSlices", series.template.slice_thickness_mm)


def _cr(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
        instance: InstancePlan) -> None:
    _exposure(writer, series)
    writer.set("ViewPosition", instance.view, Role.RETAINED)
    writer.set("ImagerPixelSpacing", [series.template.pixel_spacing_mm] * 2, Role.RETAINED)


def _projection_presentation(writer: ElementWriter, series: SeriesPlan) -> None:
    """Attributes the DX and MG image modules require of For Presentation images."""
    inverse = series.pixels.photometric == "MONOCHROME1"
    writer.set("PresentationIntentType", "FOR PRESENTATION")
    writer.set("PresentationLUTShape", "INVERSE" if inverse else "IDENTITY")
    writer.set("PixelIntensityRelationship", "LOG")
    writer.set("PixelIntensityRelationshipSign", 1)
    writer.set("RescaleIntercept", 0, Role.RETAINED)
    writer.set("RescaleSlope", 1, Role.RETAINED)
    writer.set("RescaleType", "US")
    writer.set("LossyImageCompression", "00")  # the codec marks lossy syntaxes
    writer.set("ImagerPixelSpacing", [series.template.pixel_spacing_mm] * 2, Role.RETAINED)
    writer.set("DetectorType", "SCINTILLATOR")
    _exposure(writer, series)


def _region(writer: ElementWriter, key: str) -> None:
    code, meaning = CODES[key]
    (region,) = writer.items("AnatomicRegionSequence")
    region.set("CodeValue", code)
    region.set("CodingSchemeDesignator", "SCT")
    region.set("CodeMeaning", meaning)


def _dx(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
        instance: InstancePlan) -> None:
    _projection_presentation(writer, series)
    writer.set("ImageLaterality", series.template.laterality, Role.RETAINED)
    writer.set("ViewPosition", instance.view, Role.RETAINED)
    _region(writer, "HAND")


def _mg(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
        instance: InstancePlan) -> None:
    _projection_presentation(writer, series)
    laterality, view = instance.view[0], instance.view[1:]
    writer.set("ImageLaterality", laterality, Role.RETAINED)
    writer.set("ViewPosition", view, Role.RETAINED)
    (view_code,) = writer.items("ViewCodeSequence")
    code, meaning = CODES[view]
    view_code.set("CodeValue", code)
    view_code.set("CodingSchemeDesignator", "SCT")
    view_code.set("CodeMeaning", meaning)
    _region(writer, "BREAST")
    writer.set("BodyPartThickness", 52)
    writer.set("CompressionForce", 110)


def _cine(writer: ElementWriter, frame_time_ms: float) -> None:
    writer.set("FrameTime", frame_time_ms, Role.RETAINED)
    writer.set("FrameIncrementPointer", FRAME_TIME_TAG)


def _us(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
        instance: InstancePlan) -> None:
    if series.pixels.frames > 1:
        _cine(writer, 33.3)
    writer.set("TransducerType", "CURVED LINEAR")
    writer.set("LossyImageCompression", "00")


def _xa(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
        instance: InstancePlan) -> None:
    _cine(writer, 66.7)
    writer.set("PixelIntensityRelationship", "LIN")
    writer.set("RadiationSetting", "GR")
    _exposure(writer, series)
    writer.set("PositionerPrimaryAngle", -30 + 15 * series.template.number)
    writer.set("PositionerSecondaryAngle", 20)


def _sc(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
        instance: InstancePlan) -> None:
    document = series.template.anatomy == "sc_document"
    writer.set("ConversionType", "SD" if document else "WSD")
    writer.set("DateOfSecondaryCapture", _da(instance.acquired), Role.DATE)
    writer.set("TimeOfSecondaryCapture", _tm(instance.acquired))
    if series.pixels.frames > 1:
        _cine(writer, 100.0)


MODALITY_MODULES = {"CT": _ct, "MR": _mr, "CR": _cr, "DX": _dx, "MG": _mg, "US": _us, "XA": _xa,
                    "SC": _sc}


def _private_blocks(writer: ElementWriter, study: StudyPlan, series: SeriesPlan,
                    instance: InstancePlan) -> None:
    if series.template.manufacturer.startswith("GE"):
        writer.private(GE_ACQUISITION, GE_FRAME_OF_REFERENCE_OFFSET, "DS", "0.0",
                       "Horiz. Frame of ref.")
        stamp = int((instance.acquired - datetime(1970, 1, 1)).total_seconds())
        writer.private(GE_ACQUISITION, GE_TIMESTAMP_OFFSET, "SL", stamp,
                       "Acquisition Unix time stamp", Role.DATE)
    patient = study.patient
    writer.private(PACS_DEMOGRAPHICS, 0x10, "LO", patient.person.dicom_name.replace("^", " "),
                   "PACS patient name", Role.IDENTIFYING)
    writer.private(PACS_DEMOGRAPHICS, 0x11, "LO", patient.patient_id, "PACS patient ID",
                   Role.IDENTIFYING)
    writer.private(PACS_DEMOGRAPHICS, 0x12, "DA", _da(patient.birth_date), "PACS birth date",
                   Role.DATE)
    writer.private(SITE_PROTOCOL, 0x10, "SH", study.protocol.procedure_code, "Site protocol code")


def _palette(ds: Dataset) -> None:
    for colour, table in zip(("Red", "Green", "Blue"), palette_tables()):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [len(table), 0, PALETTE_BITS])
        setattr(ds, f"{colour}PaletteColorLookupTableData", table.astype("<u2").tobytes())
