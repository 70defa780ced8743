import datetime as dt
from pathlib import Path

import pytest

from deid_pipeline.core.deid.engine import FileResult, TagEngine
from deid_pipeline.core.policy.rules import ACTIONS, PolicyError, load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline_tests.dicom_factory import ACQUISITION_UNIX_TIME, realistic_image

SECRET = b"policy test secret, not for production"


def write_policy(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def day(da: str) -> dt.date:
    return dt.datetime.strptime(da, "%Y%m%d").date()


def test_packaged_default_loads():
    policy = load_policy()

    assert policy.sources == ("default_policy.yaml",)
    assert policy.options == ("retain_longitudinal_modified_dates", "clean_descriptors")
    assert (policy.shift_min_days, policy.shift_max_days) == (365, 3650)
    assert {rule.action for rule in policy.rules} >= {"patientHashID", "replaceWithRandomName",
                                                      "shiftUnixTimeStampRandom",
                                                      "ensureTagExists"}
    assert all(rule.source.startswith("default_policy.yaml:") for rule in policy.rules)


def test_a_user_file_is_layered_over_the_default_and_wins(tmp_path):
    path = write_policy(tmp_path, "profile:\n  options: [retain_uids]\n"
                                  "dates:\n  shift_days: {min: 10, max: 20}\n"
                                  "rules:\n  - keyword: PatientID\n    action: keep\n")

    policy = load_policy([path])

    assert policy.sources == ("default_policy.yaml", str(path))
    assert policy.options == ("retain_uids",)
    assert (policy.shift_min_days, policy.shift_max_days) == (10, 20)
    assert policy.rules[0].source == f"{path}:6"
    assert any(rule.source.startswith("default_policy.yaml:") for rule in policy.rules)
    ds = realistic_image()
    TagEngine(policy, Pseudonymizer(SECRET)).deidentify(ds)
    assert ds.PatientID == "MRN12345"


BAD_FILES = [
    ("bad YAML", "rules:\n  - keyword: PatientID\n    action: [keep\n", 4, "not valid YAML"),
    ("unknown action", "rules:\n  - keyword: PatientID\n    action: scramble\n", 2,
     "unknown action 'scramble'"),
    ("unknown keyword", "rules:\n  - keyword: PatientID\n    action: keep\n"
                        "  - keyword: PatientNaem\n    action: delete\n", 4,
     "unknown DICOM keyword 'PatientNaem'"),
    ("bad tag text", "rules:\n  - tag: 0010,0010\n    action: delete\n", 2,
     "tag must look like (0010,0010)"),
    ("replaceWithLiteral without value", "rules:\n  - keyword: InstitutionName\n"
                                         "    action: replaceWithLiteral\n", 2,
     "replaceWithLiteral needs value"),
    ("unknown rule key", "rules:\n  - keyword: PatientID\n    action: keep\n    days: 3\n", 2,
     "unknown key(s) days"),
    ("unknown option", "profile:\n  options: [retain_everything]\n", 2,
     "unknown profile option(s) retain_everything"),
    ("bad shift range", "dates:\n  shift_days: {min: 30, max: 10}\n", 2,
     "shift_days needs whole numbers 0 < min <= max"),
    ("zone without boxes", "pixels:\n  zones:\n    - manufacturer: ACME\n", 3,
     "a zone needs boxes"),
    ("zone box out of order", "pixels:\n  zones:\n    - manufacturer: ACME\n"
                              "      boxes: [[10, 0, 5, 9]]\n", 3, "zone box [10, 0, 5, 9]"),
    ("zone fraction above one", "pixels:\n  zones:\n    - manufacturer: ACME\n"
                                "      units: fraction\n      boxes: [[0, 0, 2, 1]]\n", 3,
     "zone box [0, 0, 2, 1]"),
    ("zone bad pattern", "pixels:\n  zones:\n    - manufacturer: ACME\n      model: '(['\n"
                         "      boxes: [[0, 0, 1, 1]]\n", 3, "zone model is no regular expression"),
]


def test_pixel_zones_are_read_per_device_and_add_up_across_files(tmp_path):
    from pydicom.dataset import Dataset

    site = write_policy(tmp_path, "pixels:\n  zones:\n"
                                  "    - manufacturer: ACME.*\n      model: SONO ?5\n"
                                  "      boxes: [[0, 0, 99, 19], [700, 0, 799, 19]]\n"
                                  "    - manufacturer: OTHERCO\n      rows: 600\n"
                                  "      units: fraction\n      boxes: [[0.0, 0.0, 1.0, 0.1]]\n")
    more = write_policy(tmp_path, "pixels:\n  zones:\n    - manufacturer: THIRD\n"
                                  "      boxes: [[1, 2, 3, 4]]\n", "more.yaml")

    assert load_policy().pixels.zones == ()  # the default names no device
    zones = load_policy([site, more]).pixels.zones
    assert [z.source for z in zones] == [f"{site}:3", f"{site}:6", f"{more}:3"]
    ds = Dataset()
    ds.Manufacturer, ds.ManufacturerModelName = "Acme Medical", "sono5"
    ds.Rows, ds.Columns = 600, 800
    assert zones[0].applies_to(ds) and not zones[1].applies_to(ds)
    assert zones[0].boxes_for(ds) == [(0, 0, 99, 19), (700, 0, 799, 19)]
    ds.Manufacturer = "OtherCo"
    assert zones[1].applies_to(ds) and zones[1].boxes_for(ds) == [(0, 0, 799, 59)]
    ds.Rows = 512
    assert not zones[1].applies_to(ds)  # another matrix: another layout


@pytest.mark.parametrize(("kind", "text", "line", "reason"), BAD_FILES)
def test_a_bad_file_is_rejected_with_its_line_and_the_reason(tmp_path, kind, text, line, reason):
    path = write_policy(tmp_path, text)

    with pytest.raises(PolicyError) as error:
        load_policy([path])

    assert str(error.value).startswith(f"{path}:{line}: ")
    assert reason in str(error.value)


# -- every action of the vocabulary, end to end: user policy -> engine -> dataset ------------


def apply_rules(tmp_path: Path, rules: str, ds=None):
    """De-identify `ds` (a realistic CT by default) under the default policy plus `rules`."""
    path = write_policy(tmp_path, "rules:\n" + rules)
    policy = load_policy([path])
    ds = ds if ds is not None else realistic_image()
    result = TagEngine(policy, Pseudonymizer(SECRET)).deidentify(ds)
    return ds, result, path


def rule_of(result: FileResult, keyword_or_tag: str) -> str:
    return next(row.rule for row in result.audit
                if keyword_or_tag in (row.keyword, row.tag, row.path))


def test_every_action_has_an_end_to_end_test_below():
    tested = {name.removeprefix("test_action_") for name in globals()
              if name.startswith("test_action_")}
    assert tested == ACTIONS


def test_action_replaceWithRandomName(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - private_creator: ACME_PATIENT_01\n"
                                             "    element: 0x10\n"
                                             "    action: replaceWithRandomName\n")

    fake = ds[0x0011, 0x1010].value  # LO: "Given Family", not the PN form
    assert "^" not in fake and len(fake.split()) == 2
    assert not {"DOE", "JANE", "MARIE"} & set(fake.upper().split())
    assert ds[0x0011, 0x0010].value == "ACME_PATIENT_01"
    assert rule_of(result, "(0011,1010)") == f"policy {path}:2"


def test_action_patientHashID(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - keyword: OtherPatientIDs\n"
                                             "    action: patientHashID\n")

    assert ds.OtherPatientIDs == Pseudonymizer(SECRET).patient_id("MRN12345-OLD")
    assert len(ds.OtherPatientIDs) == 16 and ds.OtherPatientIDs.isdigit()
    assert rule_of(result, "OtherPatientIDs") == f"policy {path}:2"


def test_action_hashID(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - keyword: [StationName, DeviceSerialNumber]\n"
                                             "    action: hashID\n")

    pseudonyms = Pseudonymizer(SECRET)
    assert ds.StationName == pseudonyms.hash_id("CTSTATION7", "SH")
    assert len(ds.StationName) == 16
    assert ds.DeviceSerialNumber == pseudonyms.hash_id("SN-0042-XYZ", "LO")
    assert len(ds.DeviceSerialNumber) == 64
    assert rule_of(result, "StationName") == f"policy {path}:2"


def test_action_ensureTagExists(tmp_path):
    ds = realistic_image()
    del ds.BodyPartExamined
    ds, result, path = apply_rules(tmp_path, "  - keyword: BodyPartExamined\n"
                                             "    action: ensureTagExists\n"
                                             "    value: UNKNOWN\n"
                                             "  - keyword: ClinicalTrialSiteName\n"
                                             "    action: ensureTagExists\n", ds)

    assert ds.BodyPartExamined == "UNKNOWN"
    assert ds.ClinicalTrialSiteName == ""
    assert rule_of(result, "BodyPartExamined") == f"policy {path}:2"


def test_action_replaceWithLiteral(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - keyword: InstitutionName\n"
                                             "    action: replaceWithLiteral\n"
                                             "    value: RESEARCH SITE 7\n")

    assert ds.InstitutionName == "RESEARCH SITE 7"
    assert rule_of(result, "InstitutionName") == f"policy {path}:2"


def test_action_shiftUnixTimeStampRandom(tmp_path):
    ds = realistic_image()
    ds.private_block(0x0029, "ACME_TIMES_01", create=True).add_new(0x20, "SL",
                                                                    ACQUISITION_UNIX_TIME)
    ds, result, path = apply_rules(tmp_path, "  - private_creator: ACME_TIMES_01\n"
                                             "    element: 0x20\n"
                                             "    action: shiftUnixTimeStampRandom\n", ds)

    shift_days = (day(ds.StudyDate) - day("20120103")).days
    assert ds[0x0029, 0x1020].value == ACQUISITION_UNIX_TIME + shift_days * 86_400
    assert ds[0x0029, 0x0010].value == "ACME_TIMES_01"
    assert rule_of(result, "(0029,1020)") == f"policy {path}:2"


def test_action_shiftDateRandomNbOfDays(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - keyword: PatientBirthDate\n"
                                             "    action: shiftDateRandomNbOfDays\n")

    # The patient's one offset: birth date and study date keep the patient's age.
    assert day(ds.StudyDate) - day(ds.PatientBirthDate) == day("20120103") - day("19860315")
    assert ds.PatientBirthDate != "19860315"
    assert rule_of(result, "PatientBirthDate") == f"policy {path}:2"


def test_action_shiftDateFixedNbOfDays(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - keyword: [StudyDate, AcquisitionDateTime]\n"
                                             "    action: shiftDateFixedNbOfDays\n"
                                             "    days: -10\n")

    assert ds.StudyDate == "20111224"
    assert ds.AcquisitionDateTime == "20111224101112.250000+0100"
    assert rule_of(result, "StudyDate") == f"policy {path}:2"


def test_action_remove(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - keyword: StudyDescription\n"
                                             "    action: remove\n")

    assert "StudyDescription" in ds and ds.StudyDescription == ""
    assert rule_of(result, "StudyDescription") == f"policy {path}:2"


def test_action_delete(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - keyword: SeriesDescription\n"
                                             "    action: delete\n")

    assert "SeriesDescription" not in ds
    assert rule_of(result, "SeriesDescription") == f"policy {path}:2"


def test_action_keep(tmp_path):
    ds, result, path = apply_rules(tmp_path, "  - private_creator: ACME_PATIENT_01\n"
                                             "    action: keep\n"
                                             "  - keyword: StationName\n"
                                             "    action: keep\n")

    assert ds[0x0011, 0x1010].value == "DOE^JANE^MARIE"
    assert ds[0x0011, 0x0010].value == "ACME_PATIENT_01"
    assert ds.StationName == "CTSTATION7"
    assert rule_of(result, "StationName") == f"policy {path}:4"


def test_action_clean(tmp_path):
    ds = realistic_image()
    ds.AdmittingDiagnosesDescription = "Pulmonary nodule, Jane Doe, call 555-123-4567"
    ds, result, path = apply_rules(tmp_path, "  - keyword: AdmittingDiagnosesDescription\n"
                                             "    action: clean\n", ds)

    assert ds.AdmittingDiagnosesDescription == "Pulmonary nodule, call"
    assert rule_of(result, "AdmittingDiagnosesDescription") == f"policy {path}:2"
