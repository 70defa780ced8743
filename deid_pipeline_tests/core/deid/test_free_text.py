import datetime as dt

import pytest

from deid_pipeline.core.deid.free_text import clean_text
from deid_pipeline.core.deid.identifiers import IdentifyingValues, add_person_name, gather
from deid_pipeline_tests.dicom_factory import realistic_image


def known_values(*names: str, ids: tuple[str, ...] = (), places: tuple[str, ...] = (),
                 dates: tuple[dt.date, ...] = ()) -> IdentifyingValues:
    known = IdentifyingValues(ids=set(ids), places=set(places), dates=set(dates))
    for name in names:
        add_person_name(known, name)
    return known


PATIENT = known_values("DOE^JANE^MARIE", ids=("MRN12345",))


@pytest.mark.parametrize("text", [
    "Jane Doe", "DOE, JANE MARIE", "Doe^Jane", "Marie Jane Doe", "MARIE", "Mrs. doe",
    "JMD", "JD",  # initials: given, middle, family and given, family
])
def test_every_part_of_the_patients_name_in_any_order_is_removed(text):
    cleaned = clean_text(f"seen: {text}.", PATIENT).upper()

    assert not {"JANE", "DOE", "MARIE", "JMD", "JD"} & set(cleaned.replace(".", " ").split())


@pytest.mark.parametrize("date_text", [
    "01.03.2012", "03/01/2012", "2012-01-03", "03-JAN-2012", "2012 Jan 03", "20120103",
    "Jan 3, 2012", "3 Jan 2012",
])
def test_dates_in_every_written_form_are_removed_even_when_the_header_does_not_hold_them(
        date_text):
    cleaned = clean_text(f"prior exam {date_text} compared", known_values())

    assert cleaned == "prior exam compared"


@pytest.mark.parametrize(("text", "phi"), [
    ("call (555) 123-4567 today", "123-4567"),
    ("call 555.123.4567 today", "4567"),
    ("call +1 555 123 4567 today", "4567"),
    ("mail jane.doe@example.org today", "example"),
    ("lives at 123 Main Street today", "Main"),
    ("lives at 77 OAK AVENUE today", "OAK"),
    ("MRN 12345 today", "12345"),
    ("ID: AB-7781 today", "7781"),
    ("SSN 123-45-6789 today", "6789"),
    ("order 20120345678 today", "20120345678"),
])
def test_phones_mail_addresses_and_identifiers_are_removed(text, phi):
    cleaned = clean_text(text, known_values())

    assert phi not in cleaned and cleaned.endswith("today")


def test_the_files_own_identifiers_and_places_are_removed_wherever_they_occur():
    known = known_values(ids=("ACC4711",), places=("SPRINGFIELD GENERAL HOSPITAL",))

    cleaned = clean_text("acc4711 done at Springfield General Hospital, ward 3", known)

    assert cleaned == "done at, ward 3"


@pytest.mark.parametrize(("text", "cleaned"), [
    ("seen QUIMBLEFORTHS today", "seen today"),  # a long name part with letters pasted on
    ("QuimbleforthZara-CT protocol", "CT protocol"),  # the word goes whole: no "ZARA" left
    ("ref XZ998877AB9 noted", "ref noted"),  # a long ID with a letter inside a longer token
    ("Zarah stays", "Zarah stays"),  # a short name part inside a longer word: chance
])
def test_long_names_and_ids_are_removed_inside_longer_words(text, cleaned):
    known = known_values("QUIMBLEFORTH^ZARA", ids=("Z998877A", "998877"))

    assert clean_text(text, known) == cleaned


@pytest.mark.parametrize(("text", "cleaned"), [
    ("read by janedoe", "read by"), ("user JDOE", "user"), ("DoeJane", ""),
    ("ws JaneMarieDoe", "ws"), ("at SpringfieldGeneral", "at"),
])
def test_names_and_places_written_as_one_word_are_removed(text, cleaned):
    known = known_values("DOE^JANE^MARIE", places=("SPRINGFIELD GENERAL",))

    assert clean_text(text, known) == cleaned


@pytest.mark.parametrize("text", [
    "CT CHEST WITH CONTRAST", "follow-up of pulmonary nodule", "5 mm", "120 kVp",
    "idiopathic pulmonary fibrosis", "identified lesion, accessory spleen",
    "Follow-up 3 month CT", "2 views of chest, PA and LAT", "T1 MPRAGE 1.0 mm iso",
    "series 5 of 12", "seen 2 views Dr review",
])
def test_clinical_words_and_measurements_are_kept(text):
    assert clean_text(text, PATIENT) == text


def test_initials_that_are_modality_abbreviations_are_not_removed():
    """Carl Tate's initials are CT: the modality stays, his name goes."""
    known = known_values("TATE^CARL", "MORRIS^RICHARD")

    cleaned = clean_text("CT and MR reviewed by Carl Tate and Richard Morris", known)

    assert cleaned == "CT and MR reviewed by and"


def test_values_gathered_from_a_file_drive_the_cleaner():
    ds = realistic_image()
    known = gather(ds)

    cleaned = clean_text(ds.AdditionalPatientHistory + " " + ds.PatientComments, known)

    assert cleaned.startswith("follow-up of pulmonary nodule, 5 mm; prior CT")
    for phi in ("Springfield", "01/03/2012", "Jane", "Marie", "Doe", "555"):
        assert phi.upper() not in cleaned.upper()


def test_text_without_phi_is_returned_unchanged():
    text = "  Axial 1.25 mm, soft tissue kernel  "
    assert clean_text(text, PATIENT) == text
