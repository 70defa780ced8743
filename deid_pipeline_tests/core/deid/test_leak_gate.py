"""The leak gate catches what a policy lets through, whatever the character set."""

import pytest

from deid_pipeline.core.deid.batch import deidentify_tree
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.deid.identifiers import IdentifyingValues, add_person_name
from deid_pipeline.core.deid.leak_gate import LeakGate
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline_tests.dicom_factory import realistic_image, write

KEEP_NAMES = "rules:\n  - keyword: [PatientName, StudyDescription]\n    action: keep\n"


@pytest.mark.parametrize(("charset", "name"), [
    ("ISO_IR 100", "VANTERPOOL^ZEPHYRINE"),
    ("ISO_IR 192", "Müller^Jürgen"),
    ("ISO_IR 192", "山田^太郎"),
])
def test_a_policy_that_keeps_a_name_sends_the_file_to_quarantine(tmp_path, charset, name):
    src, dst, work = tmp_path / "in", tmp_path / "out", tmp_path / "work"
    ds = realistic_image()
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    write(ds, src / "kept.dcm")
    policy = tmp_path / "leaky.yaml"
    policy.write_text(KEEP_NAMES)

    report = deidentify_tree(src, dst, work, TagEngine(load_policy([policy]),
                                                       Pseudonymizer(b"k")), jobs=1)

    assert (report.written, report.quarantined) == (0, 1)
    assert "name in (0010,0010)" in next(iter(report.reasons))
    assert not list(dst.rglob("*.dcm"))


def test_the_screen_clears_bytes_without_any_value_and_flags_any_that_has_one():
    known = IdentifyingValues(name_parts={"MÜLLER"}, ids={"MRN12345"})
    gate = LeakGate(known)

    assert not gate.may_leak(b"2.25.1234\x00CT CHEST", "ISO_IR 192")
    assert gate.may_leak("note: Müller".encode(), "ISO_IR 192")
    assert gate.may_leak(b"id mrn12345 ", None)
    assert gate.may_leak(None)  # a deflated data set: only the element-wise reading can judge


@pytest.mark.parametrize(("kept_value", "caught"), [
    ("QuimbleforthZara-CT", True),  # a long name part pasted onto other letters
    ("XENOPHON2", True),
    ("QUIMBLEFORTHS follow-up", True),
    ("ZQ998877X", True),  # a long ID with letters
    ("ZARAH", False),  # a short part inside a longer word: chance
    ("CT 1998877123", False),  # an all-digit ID inside a longer number: chance
])
def test_long_names_and_ids_are_found_inside_longer_words(kept_value, caught):
    gate = LeakGate(IdentifyingValues(name_parts={"QUIMBLEFORTH", "XENOPHON", "ZARA"},
                                      ids={"ZQ998877", "998877"}))
    ds = realistic_image()
    ds.ManufacturerModelName = kept_value

    found = gate.findings(ds, "out.dcm")

    assert any("(0008,1090)" in finding for finding in found) is caught


@pytest.mark.parametrize("kept_value", ["JaneDoe-WS", "JDOE", "SPRINGFIELDGENERAL CT"])
def test_names_and_places_written_as_one_word_are_found(kept_value):
    known = IdentifyingValues(places={"SPRINGFIELD GENERAL"})
    add_person_name(known, "DOE^JANE")
    ds = realistic_image()
    ds.ManufacturerModelName = kept_value

    assert any("(0008,1090)" in finding for finding in LeakGate(known).findings(ds, "out.dcm"))
