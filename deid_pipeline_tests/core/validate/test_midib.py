import hashlib
import json
import sqlite3

import pytest

from pydicom.dataset import FileMetaDataset

from deid_pipeline.core.validate.midib import (
    CHECKS,
    AnswerCheck,
    MidibValidator,
    find_element,
    load_answer_key,
    scoring,
    worst_per_series,
)
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


@pytest.mark.parametrize(("expected", "value", "retained", "removed"), [
    ("5", "15", False, True),  # two numbers compare as numbers, before containment
    ("12.0", "12", True, False),
    ("0.5", ".5", True, False),
    ("-5", "5", False, True),  # a sign is part of the number
    ("John Smith", "Johnson Smithers", True, False),  # tokens are looked for inside words
    ("chest scan", "chestscan", True, False),
    ("Иванов Иван", "Иван Петров", False, False),  # tokens in any script
    ("Иванов", "Петров", False, True),
    ("Zoë", "Zo", False, True),
])
def test_text_rule_in_midib_order(expected, value, retained, removed):
    assert (is_retained(expected, value), is_removed(expected, value)) == (retained, removed)


def check_of(action, tag_ds, value="", action_text="", scope="Instance", **ids):
    return AnswerCheck(instance=ids.get("instance", OLD["sop"]), study=OLD["study"],
                       series=ids.get("series", OLD["series"]), modality="CT", sop_class="",
                       patient="MRN12345", action=action, tag=tag_ds, tag_ds=f"<{tag_ds}>",
                       tag_name="", value=value, action_text=action_text, scope=scope)


def test_text_held_as_bytes_is_read_and_binary_elements_count_as_present():
    ds = good_output()
    ds.add_new(0x00291010, "UN", b"DOE^JANE ")  # a private element of unknown VR
    validator = MidibValidator([], {}, {})

    assert not validator.evaluate(check_of("text_removed", "(0029,1010)", "DOE^JANE"), ds)[0]
    assert validator.evaluate(check_of("tag_retained", "(7fe0,0010)"), ds)[0]
    ds.PatientName = ""
    assert validator.evaluate(check_of("tag_retained", "(0010,0010)"), ds)[0]
    assert not validator.evaluate(check_of("text_notnull", "(0010,0010)"), ds)[0]


def test_file_meta_elements_are_checked():
    ds = good_output()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPInstanceUID = OLD["sop"]  # the original left in the file meta
    validator = MidibValidator([], {OLD["sop"]: NEW["sop"]}, {})

    assert not validator.evaluate(check_of("uid_changed", "(0002,0003)", OLD["sop"]), ds)[0]
    assert not validator.evaluate(check_of("uid_consistent", "(0002,0003)", OLD["sop"]), ds)[0]


def test_any_bracketed_letter_left_in_a_hidden_box_is_ignored():
    box = json.dumps({"text": "DOE JANE [U]", "top_left": [0, 0], "bottom_right": [3, 1]})
    validator = MidibValidator([], {}, {}, read_box=lambda _ds, _box: "[U]")

    assert validator.evaluate(check_of("pixels_hidden", "(7fe0,0010)", "", box), good_output())[0]


def test_odd_keys_load_unknown_actions_left_out(tmp_path):
    entries = {"0": {"action": "<text_removed>", "tag": "<(0010,0010)>", "tag_ds": "",
                     "value": 12345, "action_text": None,
                     "answer_category_v2": {"hipaa_m": "", "hipaa_z": "HIPAA-A"}},
               "1": {"action": "<spelling_checked>", "tag": "<(0010,0010)>"}}
    with sqlite3.connect(tmp_path / "key.db") as db:
        db.execute("CREATE TABLE answer_data (SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID,"
                   " Modality, SOPClassUID, PatientID, AnswerData)")
        db.execute("INSERT INTO answer_data VALUES (?,?,?,?,?,?,?)",
                   (OLD["sop"], OLD["study"], OLD["series"], "CT", "", "", json.dumps(entries)))

    (check,) = load_answer_key(tmp_path / "key.db")

    assert (check.action, check.tag_ds, check.value, check.scope, check.category) == (
        "text_removed", "<(0010,0010)>", "12345", "Instance", ("hipaa", "HIPAA-A"))


def test_a_series_check_judges_every_file_of_the_series_and_scores_its_worst(tmp_path):
    second = {"sop": "1.2.3.4.5.6.7.9", "new": "2.25.44"}
    clean, leaky = good_output(), good_output()
    leaky.SOPInstanceUID = second["new"]
    leaky.PatientName = "DOE^JANE"
    write(clean, tmp_path / "out" / "a.dcm")
    write(leaky, tmp_path / "out" / "b.dcm")
    uid_map = {OLD["sop"]: NEW["sop"], second["sop"]: second["new"],
               OLD["series"]: NEW["series"], OLD["study"]: NEW["study"]}
    validator = MidibValidator(
        [check_of("text_removed", "(0010,0010)", "DOE^JANE", scope="Series", instance="")],
        uid_map, {})

    results = validator.results(tmp_path / "out")

    assert sorted(zip(results["instance"], results["check_passed"])) == [
        (OLD["sop"], True), (second["sop"], False)]
    by_series = scoring(worst_per_series(results)).set_index("Category").loc["All"]
    assert (by_series.Pass, by_series.Total) == (0, 1)
