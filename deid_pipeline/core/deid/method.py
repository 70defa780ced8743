"""What a de-identified file says about its de-identification (PS3.15 E.1.1, PS3.3 C.12.1)."""

from __future__ import annotations

from collections.abc import Sequence as Seq

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from deid_pipeline.core.policy.annex_e import CLEAN_PIXEL_DATA_CODE, OPTION_CODES

BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
METHOD_NAME = "deid_pipeline PS3.15 Annex E"
IMPLEMENTATION_VERSION_NAME = "DEID_PIPELINE_01"
# The 128-byte preamble before "DICM" is the application's to use (PS3.10 7.1): it can hold
# anything, a name included, and no DICOM reader needs it. De-identified files get zeros.
EMPTY_PREAMBLE = bytes(128)
# File meta elements that describe the sending system, not the image.
SENDER_META = ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
               "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID",
               "PrivateInformation")


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def record(ds: Dataset, options: Seq[str]) -> None:
    """PatientIdentityRemoved, De-identification Method and its Code Sequence, and the
    longitudinal-dates flag, naming the profile and every option applied."""
    codes = [BASIC_PROFILE_CODE] + [OPTION_CODES[o] for o in options]
    ds.PatientIdentityRemoved = "YES"
    # LO holds 64 characters a value: one value per profile and option (VM 1-n).
    ds.DeidentificationMethod = [METHOD_NAME] + [meaning[:64] for _, meaning in codes]
    ds.DeidentificationMethodCodeSequence = Sequence([_code_item(*c) for c in codes])
    if "retain_longitudinal_full_dates" in options:
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    elif "retain_longitudinal_modified_dates" in options:
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    else:
        ds.LongitudinalTemporalInformationModified = "REMOVED"


def record_pixels_cleaned(ds: Dataset) -> None:
    """The Clean Pixel Data option (113101): the pixel stage read and redacted this image."""
    value, meaning = CLEAN_PIXEL_DATA_CODE
    codes = ds.get("DeidentificationMethodCodeSequence") or Sequence()
    if all(item.get("CodeValue") != value for item in codes):
        codes.append(_code_item(value, meaning))
        ds.DeidentificationMethodCodeSequence = codes
        methods = ds.get("DeidentificationMethod") or []
        methods = [methods] if isinstance(methods, str) else list(methods)
        ds.DeidentificationMethod = [*methods, meaning[:64]]


def rewrite_file_meta(ds: Dataset, new_sop_instance_uid: str | None) -> None:
    """The file meta of the de-identified file, and an empty preamble."""
    ds.preamble = EMPTY_PREAMBLE
    meta = ds.file_meta
    meta.MediaStorageSOPInstanceUID = new_sop_instance_uid or str(ds.SOPInstanceUID)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    for keyword in SENDER_META:
        if keyword in meta:
            delattr(meta, keyword)
