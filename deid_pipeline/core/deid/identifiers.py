"""The identifying values a file carries, gathered before anything is changed.

The free-text cleaner, the burned-in PHI matcher and the leak gate all look for the same things:
every part of every person name, initials, IDs, places and dates in the forms people write them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

from deid_pipeline.core.deid.raw_text import ascii_values

# Free-text and coded IDs that identify a patient, a visit or an order.
ID_KEYWORDS = frozenset({
    "PatientID", "OtherPatientIDs", "IssuerOfPatientID", "AccessionNumber", "StudyID",
    "RequestedProcedureID", "ScheduledProcedureStepID", "PerformedProcedureStepID",
    "AdmissionID", "MedicalRecordLocator",
    "FillerOrderNumberImagingServiceRequest", "PlacerOrderNumberImagingServiceRequest",
    "DeviceSerialNumber", "PlateID", "DetectorID", "CassetteID", "GantryID",
})
PLACE_KEYWORDS = frozenset({
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "PatientAddress", "PatientTelephoneNumbers", "PersonAddress", "PersonTelephoneNumbers",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "RegionOfResidence",
    "CountryOfResidence", "MilitaryRank", "BranchOfService", "PatientMotherBirthName",
})
# What gather decodes: sequences (to look inside), names, dates and the keywords above.
GATHERED_VRS = frozenset({"SQ", "PN", "DA", "DT"})
GATHERED_TAGS = frozenset(tag_for_keyword(k) for k in ID_KEYWORDS | PLACE_KEYWORDS)
# Parts of a name that identify nobody on their own.
NAME_NOISE = frozenset({"DR", "MD", "PHD", "JR", "SR", "II", "III", "IV", "MR", "MRS", "MS", "MISS",
                        "PROF", "RN", "RT", "DDS", "DO"})
# Clinical and imaging abbreviations that initials can collide with ("CT" for Carl Tate): never
# treated as initials, or "CT CHEST" would lose its modality.
CLINICAL_ABBREVIATIONS = frozenset({
    "AP", "PA", "LAT", "LL", "RL", "CT", "MR", "MRI", "US", "XA", "DX", "CR", "MG", "NM", "PT",
    "PET", "SC", "RF", "OT", "RT", "LT", "IV", "PO", "OR", "ER", "ED", "ICU", "HR", "BP", "KV",
    "MA", "MM", "CM", "CC", "ML", "WL", "WW", "SE", "IM", "FS", "TR", "TE", "TI", "DWI", "ADC",
    "FOV", "ROI", "AX", "COR", "SAG", "HD", "SD", "BMI", "DOB", "ID", "NO", "OK", "AM",
})
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
MIN_NAME_PART = 2
# Shorter joined forms ("JLI") are codes as often as names.
MIN_JOINED_NAME = 4
# A name part or ID this long, with a letter, is no chance part of another word (a number is:
# long digit runs hold any shorter one): pasted onto other letters ("QUIMBLEFORTHZARA-CT",
# "XENOPHON2") it is still there, and free text and the leak gate look for it inside words too.
GLUED_MIN = 8


def found_inside_words(phrase: str) -> bool:
    return len(phrase) >= GLUED_MIN and any(c.isalpha() for c in phrase)


@dataclass
class IdentifyingValues:
    name_parts: set[str] = field(default_factory=set)  # upper-case words of person names
    initials: set[str] = field(default_factory=set)  # e.g. "JT", "JKR"
    ids: set[str] = field(default_factory=set)
    places: set[str] = field(default_factory=set)  # institution, addresses, phones, station
    dates: set[dt.date] = field(default_factory=set)
    # A name written as one word, as user and station names are: "JANEDOE", "DOEJANE", "JDOE".
    joined_names: set[str] = field(default_factory=set)

    def date_renderings(self) -> set[str]:
        return {text for day in self.dates for text in render_date(day)}

    def joined_places(self) -> set[str]:
        """Places written without their spaces and stops ("SPRINGFIELDGENERALHOSPITAL")."""
        return {joined for place in self.places
                if (joined := re.sub(r"[^A-Z0-9]", "", place)) != place
                and len(joined) >= MIN_JOINED_NAME}

    def phrases(self) -> set[str]:
        """Every literal string to look for, longest first when sorted by the caller."""
        return (self.name_parts | self.joined_names | self.ids | self.places
                | self.joined_places() | self.date_renderings())


@lru_cache(maxsize=4096)  # every text field of a file asks again for the same few dates
def render_date(day: dt.date) -> frozenset[str]:
    """The ways people and devices write a date: DICOM, ISO, US and European numeric forms
    (padded or not, 4- or 2-digit years), and month-name forms."""
    y, m, d = day.year, day.month, day.day
    mon = MONTHS[m - 1]
    yy = f"{y % 100:02d}"
    forms = {
        f"{y:04d}{m:02d}{d:02d}", f"{y:04d}-{m:02d}-{d:02d}", f"{y:04d}/{m:02d}/{d:02d}",
        f"{y:04d}.{m:02d}.{d:02d}",
        f"{d:02d}-{mon}-{y:04d}", f"{d:02d} {mon} {y:04d}", f"{d}-{mon}-{y:04d}",
        f"{y:04d} {mon} {d:02d}", f"{mon} {d:02d} {y:04d}", f"{mon} {d} {y:04d}",
        f"{mon} {d}, {y:04d}", f"{d:02d}{mon}{y:04d}",
    }
    for sep in "/.-":
        for a, b in ((m, d), (d, m)):
            forms |= {f"{a:02d}{sep}{b:02d}{sep}{y:04d}", f"{a}{sep}{b}{sep}{y:04d}",
                      f"{a:02d}{sep}{b:02d}{sep}{yy}"}
    return frozenset(form.upper() for form in forms)


def parse_da(value: str) -> dt.date | None:
    digits = re.sub(r"[^0-9]", "", value or "")
    if len(digits) < 8:
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def add_person_name(found: IdentifyingValues, value: str) -> None:
    """Every component group: alphabetic, ideographic and phonetic ("Yamada^Taro=山田^太郎=...")."""
    for group in str(value).split("="):
        _add_name_group(found, group)


def _add_name_group(found: IdentifyingValues, value: str) -> None:
    components = value.split("^")
    words_by_component = [
        [w for w in re.split(r"[\s,.\-']+", c.upper()) if w and w not in NAME_NOISE]
        for c in components
    ]
    family = words_by_component[0] if words_by_component else []
    given = words_by_component[1] if len(words_by_component) > 1 else []
    middle = words_by_component[2] if len(words_by_component) > 2 else []
    for word in family + given + middle:
        if len(word) >= MIN_NAME_PART:
            found.name_parts.add(word)
    if family and given:
        joined = {given[0] + family[0], family[0] + given[0], given[0][0] + family[0],
                  "".join(given + middle + family), "".join(family + given + middle)}
        found.joined_names |= {j for j in joined if len(j) >= MIN_JOINED_NAME}
        first, last = given[0][0], family[0][0]
        candidates = {first + last, first + "".join(w[0] for w in given[1:]) + last}
        if middle:
            candidates.add(first + middle[0][0] + last)
        found.initials |= candidates - CLINICAL_ABBREVIATIONS


def gather(ds: Dataset, found: IdentifyingValues | None = None) -> IdentifyingValues:
    """Walk every element at any depth and collect what identifies someone.

    Elements that can hold none of it are not decoded: decoding every value (pixel data
    included, which the batch otherwise leaves on disk until writing) costs more than the rest of
    de-identification, and an element kept undecoded is written out byte for byte."""
    found = found if found is not None else IdentifyingValues()
    elements = ds._dict  # read directly: Dataset's item access costs more than the check here
    for key in list(elements):
        raw = elements[key]
        tag = int(key)  # a plain int: BaseTag compares equal to ints in Python, not in C
        # Implicit VR files leave the VR to the dictionary; a private tag must be decoded to know.
        vr = raw.VR
        if not vr:
            vr = dictionary_vr(tag)
            if vr is None:
                vr = ds[key].VR
        elif vr == "UN":
            vr = dictionary_vr(tag) or vr  # a public element sent as UN: its values are its VR's
        if vr not in GATHERED_VRS and tag not in GATHERED_TAGS:
            continue
        if vr == "SQ":
            for item in ds[key].value or ():
                gather(item, found)
            continue
        values = ascii_values(raw, vr)
        if values is None:
            elem = ds[key]
            vr = elem.VR
            if elem.value in (None, "", b""):
                continue
            values = [str(v) for v in (elem.value if elem.VM > 1 else [elem.value])]
        collect(found, tag, vr, values)
    return found


def collect(found: IdentifyingValues, tag: int, vr: str, values: list[str]) -> None:
    """Add what one element's values say about someone."""
    if vr == "PN":
        for value in values:
            add_person_name(found, value)
    elif vr == "DA":
        found.dates |= {d for d in (parse_da(v) for v in values) if d}
    elif vr == "DT":
        found.dates |= {d for d in (parse_da(v[:8]) for v in values) if d}
    else:
        keyword = _keyword(tag)
        if keyword in ID_KEYWORDS:
            found.ids |= {v.strip().upper() for v in values if len(v.strip()) >= 2}
        elif keyword in PLACE_KEYWORDS:
            found.places |= {v.strip().upper() for v in values if len(v.strip()) >= 3}


@lru_cache(maxsize=None)
def _keyword(tag: int) -> str:
    return keyword_for_tag(tag) or ""


@lru_cache(maxsize=None)
def dictionary_vr(tag: int) -> str | None:
    """The dictionary's VR of a tag it knows, else None."""
    return dictionary_VR(tag) if dictionary_has_tag(tag) else None
