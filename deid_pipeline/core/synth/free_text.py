"""Free-text values mixing clinical wording (which must survive) with identifying spans.

Clinical phrases hold no digits: a date or ID in the same value is removed token by token, and a
number kept in the clinical part could equal one of its tokens (MIDI-B compares numbers as
numbers), making the removal check fail for a correct de-identifier.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from deid_pipeline.core.synth.facts import FreeText, Span, SpanKind
from deid_pipeline.core.synth.identities import Patient, Person

LO_MAX = 64  # characters in an LO value
ALLERGIES = ("Allergic to iodinated contrast.", "No known drug allergies.",
             "Allergic to penicillin.", "Claustrophobic, mild sedation given.")


def clinical(text: str) -> FreeText:
    return FreeText((Span(text, SpanKind.CLINICAL),))


def _phi(text: str) -> Span:
    return Span(text, SpanKind.PHI)


def _filler(text: str) -> Span:
    return Span(text, SpanKind.FILLER)


def _clinical(text: str) -> Span:
    return Span(text, SpanKind.CLINICAL)


def spoken_name(person: Person) -> str:
    """Given and family name in the case a clinician would type them."""
    return f"{person.given.title()} {person.family.title()}"


def us_date(day: date) -> str:
    return day.strftime("%m/%d/%Y")  # numeric fields only: locale independent


def study_description(text: str, patient: Patient, rng: np.random.Generator) -> FreeText:
    """Sites sometimes append whom a study was for ("XR CHEST AP PORTABLE for Scott Kaufman")."""
    name = spoken_name(patient.person)
    if rng.random() < 0.35 and len(text) + len(name) + 5 <= LO_MAX:
        return FreeText((_clinical(text), _filler(" for "), _phi(name)))
    return clinical(text)


def series_description(text: str, day: date, rng: np.random.Generator) -> FreeText:
    if rng.random() < 0.2 and not any(char.isdigit() for char in text):
        return FreeText((_clinical(text), _filler(" "), _phi(us_date(day))))
    return clinical(text)


def reason_for_request(indication: str, referring: Person,
                       rng: np.random.Generator) -> FreeText:
    if rng.random() < 0.5 and len(indication) + len(referring.family) + 9 <= LO_MAX:
        return FreeText((_clinical(indication), _filler(" per Dr. "), _phi(referring.family)))
    return clinical(indication)


def additional_history(history: str, patient: Patient, prior: date,
                       rng: np.random.Generator) -> FreeText:
    name = spoken_name(patient.person)
    if rng.random() < 0.5:
        return FreeText((_filler("Pt "), _phi(name), _filler(", MRN "), _phi(patient.patient_id),
                         _filler(": "), _clinical(history), _filler(".")))
    return FreeText((_clinical(history), _filler("; prior exam on "), _phi(us_date(prior)),
                     _filler(", results given to "), _phi(name), _filler(".")))


def patient_comments(patient: Patient, rng: np.random.Generator) -> FreeText:
    allergy = ALLERGIES[rng.integers(len(ALLERGIES))]
    return FreeText((_clinical(allergy), _filler(f" Contact {patient.contact_relation} "),
                     _phi(spoken_name(patient.contact)), _filler(" at "), _phi(patient.phone),
                     _filler(".")))


def image_comments(finding: str, reader: Person, read_on: date,
                   rng: np.random.Generator) -> FreeText:
    if rng.random() < 0.6:
        return FreeText((_clinical(finding), _filler("; reviewed by Dr. "),
                         _phi(reader.spoken), _filler(" on "), _phi(us_date(read_on))))
    return clinical(finding)
