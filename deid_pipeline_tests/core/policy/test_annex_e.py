import json
from importlib import resources
from pathlib import Path

import pytest
import yaml
from pydicom.datadict import tag_for_keyword
from pydicom.sr.codedict import codes
from pydicom.tag import Tag
from pydicom.uid import UID

from deid_pipeline.core.policy import annex_e
from deid_pipeline.core.policy.annex_e import (
    OPTION_CODES,
    OPTION_COLUMNS,
    AnnexEProfile,
    attribute_type,
    build_profile,
    load_profile,
    render_profile,
    resolve_action,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
REFERENCE = REPOSITORY_ROOT.parent / "shared" / "reference"
SOURCE_TABLE = REFERENCE / "dicom_ps3.15_table_e.1-1.json"
needs_reference = pytest.mark.skipif(
    not SOURCE_TABLE.is_file(),
    reason=f"reference table {SOURCE_TABLE} is absent (CI clones the repository beside ../shared/)")

CT = "1.2.840.10008.5.1.4.1.1.2"
XA = "1.2.840.10008.5.1.4.1.1.12.1"
US = "1.2.840.10008.5.1.4.1.1.6.1"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
MF_SC = "1.2.840.10008.5.1.4.1.1.7.2"


def packaged_text(name: str) -> str:
    data = resources.files("deid_pipeline.core.policy") / "data"
    return (data / name).read_text(encoding="utf-8")


@needs_reference
def test_packaged_table_is_the_reference_table_converted():
    source_rows = json.loads(SOURCE_TABLE.read_text(encoding="utf-8"))
    assert packaged_text(annex_e.PROFILE_FILE) == render_profile(build_profile(source_rows))
    assert len(source_rows) == len(load_profile()) == 621


@needs_reference
def test_packaged_licence_is_the_reference_licence():
    licence = (REFERENCE / annex_e.LICENSE_FILE).read_text(encoding="utf-8")
    assert packaged_text(annex_e.LICENSE_FILE) == licence
    assert "Copyright (c) 2017 Innolitics, LLC." in licence


def test_packaged_table_names_its_source_and_licence_first():
    document = json.loads(packaged_text(annex_e.PROFILE_FILE))
    assert list(document) == ["provenance", "attributes"]
    assert "innolitics/dicom-standard" in document["provenance"]["source"]
    assert "MIT" in document["provenance"]["license"]
    assert annex_e.LICENSE_FILE in document["provenance"]["license"]


def test_main_regenerates_the_packaged_files(tmp_path, monkeypatch):
    source = tmp_path / "table.json"
    rows = [{"name": "Patient's Name", "tag": "(0010,0010)", "stdCompIOD": "Y", "basicProfile": "Z",
             "id": "00100010"}]
    source.write_text(json.dumps(rows))
    (tmp_path / annex_e.LICENSE_FILE).write_text("licence text\n")
    monkeypatch.setattr(annex_e, "__file__", str(tmp_path / "annex_e.py"))
    (tmp_path / "data").mkdir()
    assert annex_e.main([str(source)]) == 0
    written = (tmp_path / "data" / annex_e.PROFILE_FILE).read_text()
    assert written == render_profile(build_profile(rows))
    assert (tmp_path / "data" / annex_e.LICENSE_FILE).read_text() == "licence text\n"


@pytest.mark.parametrize("row, reason", [
    ({"tag": "(0010,0010)", "basicProfile": "Q"}, "unknown action code"),
    ({"tag": "(0010,0010)", "basicProfile": "Z", "rtnNewOpt": "K"}, "unknown column"),
    ({"tag": "(0010,0010)", "basicProfile": "Z", "rtnUIDsOpt": "D"}, "not K or C"),
    ({"tag": "0010,0010", "basicProfile": "Z"}, "unexpected tag form"),
])
def test_build_profile_rejects_what_it_would_misread(row, reason):
    with pytest.raises(ValueError, match=reason):
        build_profile([{"name": "Patient's Name", **row}])


def test_build_profile_rejects_a_repeated_tag():
    row = {"name": "Patient's Name", "tag": "(0010,0010)", "basicProfile": "Z"}
    with pytest.raises(ValueError, match="listed twice"):
        build_profile([row, row])


@pytest.mark.parametrize("tag, options, action", [
    (0x00080020, [], "Z"),  # Study Date
    (0x00080020, ["retain_longitudinal_modified_dates"], "C"),
    (0x00080020, ["retain_longitudinal_full_dates"], "K"),
    (0x0020000D, [], "U"),  # Study Instance UID
    (0x0020000D, ["retain_uids"], "K"),
    (0x00080018, ["retain_uids"], "K"),  # SOP Instance UID
    (0x00080080, [], "X/Z/D"),  # Institution Name
    (0x00080080, ["retain_institution_identity"], "K"),
    (0x00101010, ["retain_patient_characteristics"], "K"),  # Patient's Age
    (0x00081030, ["clean_descriptors"], "C"),  # Study Description
    (0x00181000, ["retain_device_identity"], "K"),  # Device Serial Number
    (0x00100010, ["retain_uids", "clean_descriptors"], "Z"),  # options that do not name it
])
def test_selected_options_override_the_basic_profile(tag, options, action):
    assert load_profile().action_for(tag, options) == action


def test_clean_wins_over_retain_when_selected_options_disagree():
    profile = load_profile()
    date_of_last_calibration = Tag("DateOfLastCalibration")
    assert profile.action_for(date_of_last_calibration, []) == "X"
    assert profile.action_for(date_of_last_calibration, ["retain_device_identity"]) == "K"
    assert profile.action_for(date_of_last_calibration,
                              ["retain_device_identity", "retain_longitudinal_full_dates"]) == "K"
    assert profile.action_for(
        date_of_last_calibration,
        ["retain_device_identity", "retain_longitudinal_modified_dates"]) == "C"


def test_the_only_disagreements_in_the_table_are_device_dates():
    # If a new edition brings other K/C conflicts, the precedence rule needs a fresh look.
    ignoring_full_dates = [
        {option: code for option, code in entry.options.items()
         if option != "retain_longitudinal_full_dates"}
        for entry in load_profile()]
    conflicts = [options for options in ignoring_full_dates if set(options.values()) == {"K", "C"}]
    assert len(conflicts) == 11
    assert all(options == {"retain_device_identity": "K", "retain_longitudinal_modified_dates": "C"}
               for options in conflicts)


def test_full_and_modified_dates_are_alternatives():
    with pytest.raises(ValueError, match="alternatives"):
        load_profile().action_for(0x00080020, ["retain_longitudinal_full_dates",
                                               "retain_longitudinal_modified_dates"])


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError, match="unknown Annex E option"):
        load_profile().action_for(0x00080020, ["retain_everything"])
    with pytest.raises(TypeError):
        load_profile().action_for(0x00080020, "retain_uids")


@pytest.mark.parametrize("tag, name", [
    (0x60023000, "Overlay Data"),
    (0x60004000, "Overlay Comments"),
    (0x501E0010, "Curve Data"),
])
def test_repeating_group_rows_match_their_groups(tag, name):
    profile = load_profile()
    assert profile.entry_for(tag).name == name
    assert profile.action_for(tag, []) == "X"
    assert profile.action_for(tag, ["clean_graphics"]) == "C"


@pytest.mark.parametrize("tag", [0x00091001, 0x00290010, 0x7FE10010, 0x60010010, 0x50010010])
def test_odd_groups_are_private_attributes(tag):
    profile = load_profile()
    assert profile.entry_for(Tag(tag)).name == "Private Attributes"
    assert profile.action_for(tag, []) == "X"
    assert profile.action_for(tag, ["retain_safe_private"]) == "C"


def test_attributes_the_table_does_not_list_have_no_action():
    assert load_profile().action_for(Tag("Rows"), []) is None
    assert load_profile().action_for(0x60003001, []) is None  # overlay group, unlisted element


def test_an_exact_tag_wins_over_a_wildcard_row():
    profile = AnnexEProfile({
        "(60XX,3000)": {"name": "Overlay Data", "basic_profile": "X", "options": {}},
        "(6000,3000)": {"name": "First Overlay Data", "basic_profile": "K", "options": {}},
        "(60XX,XXXX)": {"name": "Any Overlay", "basic_profile": "Z", "options": {}},
    })
    assert profile.action_for(0x60003000, []) == "K"
    assert profile.action_for(0x60023000, []) == "X"
    assert profile.action_for(0x60020010, []) == "Z"


def test_every_exact_row_is_in_an_even_group():
    assert all(int(entry.tag[1:5], 16) % 2 == 0 for entry in load_profile() if "X" not in entry.tag
               and entry.tag != annex_e.PRIVATE_ATTRIBUTES_TAG)


# Every combined code of Table E.1-1, resolved for each type and for an unknown type.
COMBINED_CODE_CASES = {
    #         1     1C    2     2C    3     unknown
    "X/Z": (None, None, "Z", "Z", "X", "Z"),
    "X/D": ("D", "D", "D", "D", "X", "D"),
    "Z/D": ("D", "D", "Z", "Z", "Z", "D"),
    "X/Z/D": ("D", "D", "Z", "Z", "X", "D"),
    "X/Z/U*": ("U", "U", "Z", "Z", "X", "U"),
}


def test_the_combined_codes_of_the_table_are_the_ones_tested():
    combined = {entry.basic_profile for entry in load_profile() if "/" in entry.basic_profile}
    assert combined == COMBINED_CODE_CASES.keys()


@pytest.mark.parametrize("code", sorted(COMBINED_CODE_CASES))
def test_resolve_action_for_each_combined_code(code):
    types = ("1", "1C", "2", "2C", "3", None)
    for attribute_type_, expected in zip(types, COMBINED_CODE_CASES[code]):
        if expected is None:
            with pytest.raises(ValueError, match="conformant"):
                resolve_action(code, attribute_type_)
        else:
            assert resolve_action(code, attribute_type_) == expected, (code, attribute_type_)


@pytest.mark.parametrize("code", ["D", "Z", "X", "K", "C", "U"])
def test_resolve_action_returns_single_codes(code):
    assert resolve_action(code, "3") == resolve_action(code, None) == code


def test_resolve_action_rejects_unknown_codes_and_types():
    with pytest.raises(ValueError, match="unknown action code"):
        resolve_action("X/Q", "3")
    with pytest.raises(ValueError, match="unknown attribute type"):
        resolve_action("X/Z", "4")


def same_code(ours, pydicoms) -> bool:
    return (ours.value, ours.scheme_designator, ours.meaning) == (
        pydicoms.value, pydicoms.scheme_designator, pydicoms.meaning)


def test_method_codes_are_pydicoms_cid_7050_codes():
    assert same_code(annex_e.BASIC_PROFILE_CODE, codes.DCM.BasicApplicationConfidentialityProfile)
    assert same_code(annex_e.CLEAN_PIXEL_DATA_CODE, codes.DCM.CleanPixelDataOption)
    assert same_code(annex_e.CLEAN_RECOGNIZABLE_VISUAL_FEATURES_CODE,
                     codes.DCM.CleanRecognizableVisualFeaturesOption)
    pydicom_keywords = {
        "retain_longitudinal_full_dates": "RetainLongitudinalTemporalInformationFullDatesOption",
        "retain_longitudinal_modified_dates":
            "RetainLongitudinalTemporalInformationModifiedDatesOption",
        "retain_patient_characteristics": "RetainPatientCharacteristicsOption",
        "retain_device_identity": "RetainDeviceIdentityOption",
        "retain_institution_identity": "RetainInstitutionIdentityOption",
        "retain_uids": "RetainUidsOption",
        "retain_safe_private": "RetainSafePrivateOption",
        "clean_descriptors": "CleanDescriptorsOption",
        "clean_structured_content": "CleanStructuredContentOption",
        "clean_graphics": "CleanGraphicsOption",
    }
    assert OPTION_CODES.keys() == OPTION_COLUMNS.keys() == pydicom_keywords.keys()
    for option, keyword in pydicom_keywords.items():
        assert same_code(OPTION_CODES[option], getattr(codes.DCM, keyword)), option


def test_method_codes_unpack_as_value_and_meaning():
    value, meaning = OPTION_CODES["retain_uids"]
    assert (value, meaning) == ("113110", "Retain UIDs Option")


@pytest.mark.parametrize("keyword, sop_class, expected", [
    ("PatientName", CT, "2"),
    ("PatientID", XA, "2"),
    ("ReferencedImageSequence", CT, "3"),
    ("ReferencedImageSequence", XA, "1C"),
    ("AcquisitionDateTime", CT, "3"),
    ("AcquisitionDateTime", US, "1C"),
    ("ReferencedPerformedProcedureStepSequence", DX, "1C"),
    ("ContentDate", CT, "2C"),
    ("ContentDate", MF_SC, None),  # the functional groups may make it type 1: left unknown
    ("DetectorID", CT, None),
    ("Manufacturer", CT, None),  # not listed
    ("PatientName", "1.2.840.10008.5.1.4.1.1.88.22", None),  # Enhanced SR: not an image IOD here
])
def test_attribute_type(keyword, sop_class, expected):
    assert attribute_type(keyword, sop_class) == expected


def test_attribute_types_file_is_consistent_with_the_table():
    document = yaml.safe_load(packaged_text(annex_e.ATTRIBUTE_TYPES_FILE))
    iods = document["iods"]
    for uids in iods.values():
        for uid in uids:
            assert UID(uid).is_valid and "Image Storage" in UID(uid).name, uid
    profile = load_profile()
    for keyword, types_by_iod in document["types"].items():
        entry = profile.entry_for(tag_for_keyword(keyword))
        assert entry is not None and "X" not in entry.tag, f"{keyword} is not a Table E.1-1 row"
        assert set(types_by_iod) <= {"all", *iods}, keyword
        assert set(types_by_iod.values()) <= annex_e.ATTRIBUTE_TYPES, keyword
        for attribute_type_ in types_by_iod.values():
            resolve_action(entry.basic_profile, attribute_type_)  # raises if not conformant
            if entry.basic_profile == "Z":  # the standard empties type 2 attributes only
                assert attribute_type_ in ("2", "2C"), keyword


def test_combined_actions_of_ct_attributes_resolve_to_one_action():
    profile = load_profile()
    for keyword in ("InstitutionName", "StationName", "OperatorsName", "PatientID", "ContentDate",
                    "AcquisitionDateTime", "ReferencedImageSequence", "SeriesDate"):
        code = profile.action_for(tag_for_keyword(keyword), [])
        assert resolve_action(code, attribute_type(keyword, CT)) in annex_e.ACTIONS
