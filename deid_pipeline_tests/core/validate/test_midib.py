import hashlib
import json
import sqlite3

import pytest

from deid_pipeline.core.validate.midib import CHECKS, MidibValidator, find_element, scoring
from deid_pipeline.core.validate.text_rule import is_removed, is_retained
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

OLD = {"sop": "1.2.3.4.5.6.7.1", "study": "1.2.3.4.5.6.7.2", "series": "1.2.3.4.5.6.7.3"}
NEW = {"sop": "2.25.11", "study": "2.25.22", "series": "2.25.33"}
BOX = {"text": "DOE JANE", "top_left": [0, 0], "bottom_right": [3, 1]}


def original():
    ds = ct_with_nested_and_private()
    ds.StudyDate = "20120103"
    ds.StudyDescription = "CT CHEST for DOE JANE"
    return ds


def answer_key(path, pixel_md5):
    def check(action, tag, value, action_text="", tag_ds=None, name=""):
        return {"action": f"<{action}>", "tag": f"<{tag}>", "tag_ds": f"<{tag_ds or tag}>",
                "tag_name": f"<{name}>", "value": f"<{value}>", "action_text": f"<{action_text}>"}

    checks = [
        check("tag_retained", "(0028,0010)", "4", name="Rows"),
        check("text_notnull", "(0008,0060)", "CT", name="Modality"),
        check("text_retained", "(0008,1030)", "CT CHEST for DOE JANE", "CT CHEST"),
        check("text_removed", "(0010,0010)", "DOE^JANE", name="PatientName"),
        check("date_shifted", "(0008,0020)", "20120103", name="StudyDate"),
        check("uid_changed", "(0020,000e)", OLD["series"]),
        check("uid_consistent", "(0020,000d)", OLD["study"]),
        check("patid_consistent", "(0010,0020)", "MRN12345"),
        check("pixels_retained", "(7fe0,0010)", "", pixel_md5),
        check("pixels_hidden", "(7fe0,0010)", "", json.dumps(BOX)),
        check("text_removed", "(0040,0275)", "RP-778",
              tag_ds="(0040,0275)>[<0000>]<(0040,1001)"),
    ]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE answer_data (SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID,"
                   " Modality, SOPClassUID, PatientID, scope, AnswerData)")
        db.execute("INSERT INTO answer_data VALUES (?,?,?,?,?,?,?,?)",
                   (OLD["sop"], OLD["study"], OLD["series"], "CT", "1.2.840.10008.5.1.4.1.1.2",
                    "MRN12345", "<Instance>", json.dumps(dict(enumerate(checks)))))
    return path


def good_output():
    ds = original()
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = NEW["sop"], NEW["study"], NEW["series"]
    ds.PatientID = "4000000000000001"
    ds.PatientName = "Roe^Mary"
    ds.StudyDate = "20090101"
    ds.StudyDescription = "CT CHEST for"
    del ds.RequestAttributesSequence[0].RequestedProcedureID
    return ds


VIOLATIONS = {
    "tag_retained": lambda ds: delattr(ds, "Rows"),
    "text_notnull": lambda ds: setattr(ds, "Modality", ""),
    "text_retained": lambda ds: setattr(ds, "StudyDescription", "for"),
    "text_removed": lambda ds: setattr(ds, "PatientName", "Doe^Mary"),
    "date_shifted": lambda ds: setattr(ds, "StudyDate", "20120103"),
    "uid_changed": lambda ds: setattr(ds, "SeriesInstanceUID", "1.9." + OLD["series"]),
    "uid_consistent": lambda ds: setattr(ds, "StudyInstanceUID", "2.25.99"),
    "patid_consistent": lambda ds: setattr(ds, "PatientID", "4000000000000002"),
    "pixels_retained": lambda ds: setattr(ds, "PixelData", b"\x00" * 32),
    "pixels_hidden": None,  # the box reader below reads the name back
}


@pytest.fixture
def setup(tmp_path):
    pixel_md5 = hashlib.md5(original().PixelData).hexdigest()
    key = answer_key(tmp_path / "answer_key.db", pixel_md5)
    maps = tmp_path / "work"
    maps.mkdir()
    (maps / "uid_mapping.csv").write_text(
        "id_old,id_new\n" + "".join(f"{OLD[k]},{NEW[k]}\n" for k in OLD))
    (maps / "patid_mapping.csv").write_text("id_old,id_new\nMRN12345,4000000000000001\n")
    return key, maps


def run(key, maps, ds, folder, read="") -> "pd.DataFrame":
    write(ds, folder / "out.dcm")
    validator = MidibValidator.from_files(key, maps, read_box=lambda _ds, _box: read)
    return validator.results(folder)


def test_a_good_output_passes_every_check(setup, tmp_path):
    results = run(*setup, good_output(), tmp_path / "good")
    assert results["check_passed"].all(), results[~results["check_passed"]]
    assert {a.strip("<>") for a in results["action"]} == set(CHECKS)


@pytest.mark.parametrize("violated", sorted(VIOLATIONS))
def test_each_violation_is_caught_exactly_once(setup, tmp_path, violated):
    ds = good_output()
    if VIOLATIONS[violated]:
        VIOLATIONS[violated](ds)
    results = run(*setup, ds, tmp_path / violated,
                  read="DOE JANE" if violated == "pixels_hidden" else "")
    failed = results.loc[~results["check_passed"], "action"].tolist()
    assert failed == [f"<{violated}>"]


def test_a_missing_output_passes_only_removal_checks(setup, tmp_path):
    (tmp_path / "empty").mkdir()
    results = MidibValidator.from_files(*setup, read_box=lambda _ds, _box: "").results(
        tmp_path / "empty")
    passed = set(results.loc[results["check_passed"], "action"])
    assert passed == {"<text_removed>", "<date_shifted>", "<uid_changed>", "<pixels_hidden>"}
    table = scoring(results).set_index("Category")
    assert table.loc["All", "Total"] == len(results) and table.loc["All", "Pass"] == 5


def test_without_a_box_reader_burned_in_checks_are_not_evaluated(setup, tmp_path):
    (tmp_path / "empty").mkdir()
    results = MidibValidator.from_files(*setup).results(tmp_path / "empty")
    assert "<pixels_hidden>" not in set(results["action"]) and len(results) == 10


def test_paths_reach_sequence_items_and_private_blocks():
    ds = ct_with_nested_and_private()
    assert find_element(ds, "<(0040,0275)>[<0000>]<(0040,1001)>").value == "RP-778"
    assert find_element(ds, '<(0011,"ACME_PATIENT_01",10)>').value == "DOE^JANE"
    assert find_element(ds, "<(0040,0275)>[<0001>]<(0040,1001)>") is None


def test_text_rule_tokens_numbers_and_stop_words():
    assert is_retained("Follow-up of the nodule", "nodule follow up")
    assert not is_retained("CT CHEST", "CT")
    assert is_retained("120 kVp", "kvp 120.0")
    assert is_removed("DOE^JANE", "Roe^Mary") and not is_removed("DOE^JANE", "jane roe")
    assert is_removed("anything", "")
