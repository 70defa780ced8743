import datetime as dt
import warnings
from pathlib import Path

import pytest
from faker.providers.person.en_US import Provider as EnglishNames
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline_tests.dicom_factory import (
    ACQUISITION_UNIX_TIME,
    Patient,
    Study,
    realistic_image,
    referencing_image,
)

SECRET = b"engine test secret, not for production"
DIGITAL_X_RAY = "1.2.840.10008.5.1.4.1.1.1.1"
# A second study of the default patient.
LATER_STUDY = Study(study_uid="1.2.826.0.1.3680043.9.8888.1", date="20130506")
# Elements that describe the pixels or how they were acquired: they identify nobody and the
# image is useless without them.
IMAGE_KEYWORDS = (
    "Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "PixelSpacing", "RescaleIntercept",
    "RescaleSlope", "WindowCenter", "WindowWidth", "KVP", "SliceThickness", "XRayTubeCurrent",
    "ExposureTime", "ConvolutionKernel", "ImagePositionPatient", "ImageOrientationPatient",
    "BodyPartExamined", "Modality", "ImageType", "PixelData",
)


def make_engine(tmp_path: Path | None = None, user_policy: str | None = None,
                secret: bytes = SECRET) -> TagEngine:
    files = []
    if user_policy is not None:
        files.append(tmp_path / "user_policy.yaml")
        files[0].write_text(user_policy)
    policy = load_policy(files)
    return TagEngine(policy, Pseudonymizer(secret, min_shift_days=policy.shift_min_days,
                                           max_shift_days=policy.shift_max_days))


def day(da: str) -> dt.date:
    return dt.datetime.strptime(da, "%Y%m%d").date()


def test_one_original_uid_becomes_one_new_uid_in_meta_element_and_other_files_reference():
    ct = realistic_image()
    xa = referencing_image(ct, sop_uid="1.2.826.0.1.3680043.9.7777.6.1")
    original = {k: str(ct.get(k)) for k in ("SOPInstanceUID", "StudyInstanceUID",
                                            "SeriesInstanceUID", "FrameOfReferenceUID")}
    engine = make_engine()

    ct_result = engine.deidentify(ct)
    xa_result = engine.deidentify(xa)

    new_sop = ct.SOPInstanceUID
    assert new_sop != original["SOPInstanceUID"]
    assert ct.file_meta.MediaStorageSOPInstanceUID == new_sop
    # XA's Referenced Image Sequence is type 1C: kept, its UIDs replaced, not emptied.
    assert xa.ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_sop
    assert ct_result.uid_map[original["SOPInstanceUID"]] == new_sop
    assert xa_result.uid_map[original["SOPInstanceUID"]] == new_sop
    assert xa.StudyInstanceUID == ct.StudyInstanceUID
    new_uids = [str(ct.get(k)) for k in original]
    assert len(set(new_uids)) == len(new_uids)  # distinct originals stay distinct
    assert xa.SOPInstanceUID not in new_uids
    for uid in new_uids + [str(xa.SOPInstanceUID)]:
        assert uid.startswith("2.25.") and UID(uid).is_valid and len(uid) <= 64


def test_nested_source_image_reference_keeps_its_items_with_new_uids():
    """A type applies at the top level only: the CT's own Source Image Sequence (type 3) goes,
    one inside another sequence's item keeps its item, UIDs replaced."""
    ct = realistic_image()
    source = Dataset()
    source.ReferencedSOPClassUID = ct.SOPClassUID
    source.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.9.7777.3.9"
    derivation = Dataset()
    derivation.SourceImageSequence = Sequence([source])
    ct.DerivationImageSequence = Sequence([derivation])
    ct.SourceImageSequence = Sequence([source])
    engine = make_engine()

    result = engine.deidentify(ct)

    assert "SourceImageSequence" not in ct
    nested = ct.DerivationImageSequence[0].SourceImageSequence[0]
    assert nested.ReferencedSOPInstanceUID == result.uid_map["1.2.826.0.1.3680043.9.7777.3.9"]
    assert nested.ReferencedSOPInstanceUID.startswith("2.25.")


def test_patient_id_becomes_the_same_16_digit_pseudonym_for_every_file_and_engine():
    first = realistic_image(sop_uid="1.2.826.0.1.3680043.9.7777.3.1")
    second = realistic_image(study=LATER_STUDY, sop_uid="1.2.826.0.1.3680043.9.8888.3.1")
    same_secret_copy, other_secret_copy = realistic_image(), realistic_image()

    result = make_engine().deidentify(first)
    make_engine().deidentify(second)
    make_engine().deidentify(same_secret_copy)
    make_engine(secret=b"another secret").deidentify(other_secret_copy)

    pseudonym = first.PatientID
    assert len(pseudonym) == 16 and pseudonym.isdigit() and pseudonym != "MRN12345"
    assert second.PatientID == same_secret_copy.PatientID == pseudonym
    assert other_secret_copy.PatientID != pseudonym
    assert result.patient_id == ("MRN12345", pseudonym)


@pytest.mark.parametrize(("sex", "given_names"), [("F", EnglishNames.first_names_female),
                                                  ("M", EnglishNames.first_names_male)])
def test_patient_name_becomes_a_fake_name_of_the_same_sex(sex, given_names):
    ds = realistic_image(patient=Patient(name="DOE^ALEX^MARIE", sex=sex))

    make_engine().deidentify(ds)

    family, given = str(ds.PatientName).split("^")
    assert given in given_names
    assert {family.upper(), given.upper()}.isdisjoint({"DOE", "ALEX", "MARIE"})


def test_dates_of_one_patient_move_by_one_offset_keeping_intervals_times_and_utc_offsets():
    first = realistic_image()
    later = realistic_image(study=LATER_STUDY, sop_uid="1.2.826.0.1.3680043.9.8888.3.1")
    scheduled = first.RequestAttributesSequence[0].ScheduledProcedureStepStartDate
    engine = make_engine()

    engine.deidentify(first)
    engine.deidentify(later)

    shift = day(first.StudyDate) - day("20120103")
    assert dt.timedelta(days=-3650) <= shift <= dt.timedelta(days=-365)
    assert day(later.StudyDate) - day("20130506") == shift
    nested = first.RequestAttributesSequence[0].ScheduledProcedureStepStartDate
    assert day(first.StudyDate) - day(nested) == day("20120103") - day(scheduled)
    for keyword in ("SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate"):
        assert first.get(keyword) == first.StudyDate
    assert first.AcquisitionDateTime == first.StudyDate + "101112.250000+0100"
    assert (first.StudyTime, first.AcquisitionTime) == ("101112", "101112.25")


def test_a_date_that_cannot_be_parsed_is_emptied_not_passed_on():
    ds = realistic_image()
    with warnings.catch_warnings():  # pydicom warns about the invalid values being set
        warnings.simplefilter("ignore")
        ds.StudyDate = "03/01/2012"
        ds.AcquisitionDateTime = "03/01/2012 10:11"

    make_engine().deidentify(ds)

    assert ds.StudyDate == "" and ds.AcquisitionDateTime == ""


def test_private_block_naming_the_patient_goes_with_its_creator_a_retained_one_stays():
    ds = realistic_image()
    result = make_engine().deidentify(ds)

    assert (0x0011, 0x0010) not in ds and (0x0011, 0x1010) not in ds
    assert ds[0x0019, 0x0010].value == "GEMS_ACQU_01"
    shifted_by = ds[0x0019, 0x1092].value - ACQUISITION_UNIX_TIME
    date_shift = day(ds.StudyDate) - day("20120103")
    assert shifted_by == date_shift.days * 86_400
    assert any(row.tag == "(0019,1092)" and row.action == "shiftUnixTimeStampRandom"
               for row in result.audit)


def test_overlay_and_curve_data_are_removed():
    ds = realistic_image()
    assert any(tag.group in (0x5000, 0x6000) for tag in ds.keys())

    make_engine().deidentify(ds)

    assert not [tag for tag in ds.keys() if tag.group in (0x5000, 0x6000)]


def test_type_2_patient_and_study_elements_are_present_even_when_the_input_lacks_them():
    ds = realistic_image()
    missing = ("PatientBirthDate", "PatientSex", "ReferringPhysicianName", "StudyID",
               "AccessionNumber", "StudyTime")
    for keyword in missing:
        delattr(ds, keyword)

    make_engine().deidentify(ds)

    for keyword in missing:
        assert keyword in ds and ds.get(keyword) == ""


def test_the_file_says_how_it_was_deidentified():
    ds = realistic_image()
    make_engine().deidentify(ds)

    assert ds.PatientIdentityRemoved == "YES"
    codes = [(item.CodeValue, item.CodingSchemeDesignator)
             for item in ds.DeidentificationMethodCodeSequence]
    assert codes == [("113100", "DCM"), ("113107", "DCM"), ("113105", "DCM")]
    assert "Basic Application Confidentiality Profile" in ds.DeidentificationMethod
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"


def test_without_date_options_dates_are_emptied_and_the_flag_says_removed(tmp_path):
    ds = realistic_image()
    make_engine(tmp_path, "profile:\n  options: []\n").deidentify(ds)

    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100"]
    assert ds.StudyDate == "" and ds.ContentDate == ""
    assert "AcquisitionDate" not in ds and "SeriesDate" not in ds


def test_full_dates_option_keeps_dates_and_says_unmodified(tmp_path):
    ds = realistic_image()
    make_engine(tmp_path, "profile:\n  options: [retain_longitudinal_full_dates]\n"
                ).deidentify(ds)

    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert ds.StudyDate == "20120103"
    assert "113106" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]


def test_combined_actions_resolve_by_the_attributes_type_in_the_iod(tmp_path):
    """X/Z: removed when type 3, emptied when type 2; X/Z/D on a type 3 attribute: removed."""
    ds = realistic_image(sop_class=DIGITAL_X_RAY, modality="DX")
    context = Dataset()
    context.ConceptNameCodeSequence = Sequence()
    ds.AcquisitionContextSequence = Sequence([context])  # X/Z, type 2 in DX
    ds.PatientSexNeutered = "ALTERED"  # X/Z, type 2C

    result = make_engine(tmp_path, "profile:\n  options: []\n").deidentify(ds)

    assert "AcquisitionContextSequence" in ds and len(ds.AcquisitionContextSequence) == 0
    assert ds.PatientSexNeutered == ""
    assert "AcquisitionDate" not in ds  # X/Z, type 3
    assert "InstitutionName" not in ds and "OperatorsName" not in ds  # X/Z/D, type 3
    assert ds.ContrastBolusAgent == ""  # Z/D, type 2
    rules = {row.keyword: row.rule for row in result.audit}
    assert rules["AcquisitionContextSequence"] == "annex-e X/Z type 2"
    assert rules["AcquisitionDate"] == "annex-e X/Z type 3"


def test_pixel_description_and_acquisition_parameters_are_unchanged():
    ds = realistic_image()
    before = {keyword: ds[keyword].value for keyword in IMAGE_KEYWORDS}

    make_engine().deidentify(ds)

    assert {keyword: ds[keyword].value for keyword in IMAGE_KEYWORDS} == before


def test_retain_uids_option_keeps_every_uid(tmp_path):
    ds = realistic_image()
    originals = {k: ds.get(k) for k in ("SOPInstanceUID", "StudyInstanceUID",
                                        "SeriesInstanceUID", "FrameOfReferenceUID")}

    result = make_engine(tmp_path, "profile:\n  options: [retain_uids]\n").deidentify(ds)

    assert {k: ds.get(k) for k in originals} == originals
    assert ds.file_meta.MediaStorageSOPInstanceUID == originals["SOPInstanceUID"]
    assert result.uid_map == {}


def test_retain_institution_identity_option_keeps_the_institution(tmp_path):
    kept, removed = realistic_image(), realistic_image()

    make_engine(tmp_path, "profile:\n  options: [retain_institution_identity]\n"
                ).deidentify(kept)
    make_engine().deidentify(removed)

    assert kept.InstitutionName == "Springfield General Hospital"
    assert "InstitutionName" not in removed
