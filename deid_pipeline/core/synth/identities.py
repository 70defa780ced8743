"""Synthetic people and places: patients, staff and institutions, reproducible from a seed.

Names and addresses come from Faker (seeded per instance, so other Faker users do not disturb
them); numbers come from a numpy generator. Nothing depends on today's date: Faker's date
providers are relative to now and are never used.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from faker import Faker

# Locales whose names carry letters outside ASCII; such patients are written with ISO_IR 192.
NON_ASCII_LOCALES = ("de_DE", "fr_FR", "es_ES", "pl_PL", "cs_CZ")
NON_ASCII_CHARACTER_SET = "ISO_IR 192"
DEFAULT_CHARACTER_SET = "ISO_IR 100"
ETHNIC_GROUPS = ("White", "Black", "Hispanic", "Asian", "Pacific Islander")
CONTACT_RELATIONS = ("daughter", "son", "wife", "husband", "sister", "brother")
INSTITUTION_FORMS = ("{last} Memorial Hospital", "{company} Medical Center",
                     "St. {first} Hospital", "University of {city} Medical Center")
DEPARTMENTS = ("Radiology", "Diagnostic Imaging", "Medical Imaging", "Imaging Services")
STAFF_PER_INSTITUTION = 8
# Letters no Unicode decomposition maps to ASCII.
ASCII_FOLDS = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d",
                             "Đ": "D", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE"})
OLDEST_BIRTH = date(1930, 1, 1)
YOUNGEST_BIRTH = date(2012, 12, 31)


def ascii_fold(text: str) -> str:
    """The text as an ASCII-only device would print it (MÜLLER -> MULLER)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(ASCII_FOLDS))
    return decomposed.encode("ascii", "ignore").decode("ascii")


@dataclass(frozen=True)
class Person:
    family: str
    given: str
    middle: str = ""

    @property
    def dicom_name(self) -> str:
        """PN value: family^given^middle, trailing empty components dropped."""
        return "^".join((self.family, self.given, self.middle)).rstrip("^")

    @property
    def spoken(self) -> str:
        """The name as free text writes it: given family."""
        return f"{self.given} {self.family}"

    @property
    def initials(self) -> str:
        """Initials as technologists sign images (JT, SWU)."""
        parts = (self.given, self.middle, self.family)
        return "".join(ascii_fold(part)[:1] for part in parts if part).upper()


@dataclass(frozen=True)
class StaffMember:
    person: Person
    staff_id: str
    phone: str


@dataclass(frozen=True)
class Institution:
    name: str
    address: str
    phone: str
    department: str
    code: str  # a few capitals, used in station names and the MRN issuer
    staff: tuple[StaffMember, ...]


@dataclass(frozen=True)
class Patient:
    person: Person
    sex: str
    birth_date: date
    patient_id: str
    other_patient_id: str
    address: str
    phone: str
    mother_birth_name: Person
    ethnic_group: str
    height_m: float
    weight_kg: float
    contact: Person  # the next of kin patient comments name
    contact_relation: str
    character_set: str

    @property
    def burned_name(self) -> str:
        """LASTNAME FIRSTNAME as a modality burns it into pixels (ASCII only)."""
        return ascii_fold(f"{self.person.family} {self.person.given}").upper()


class IdentityFactory:
    """Makes the corpus' people and places; the same seed and call order give the same ones."""

    def __init__(self, seed: int) -> None:
        self._fake = Faker("en_US")
        self._fake.seed_instance(seed)
        self._foreign = {locale: Faker(locale) for locale in NON_ASCII_LOCALES}
        for faker in self._foreign.values():
            faker.seed_instance(seed)
        self._rng = np.random.default_rng([seed, 0x1D])

    def institution(self) -> Institution:
        fake, rng = self._fake, self._rng
        form = INSTITUTION_FORMS[rng.integers(len(INSTITUTION_FORMS))]
        name = form.format(last=fake.last_name(), company=fake.company(),
                           first=fake.first_name(), city=fake.city())
        code = "".join(word[0] for word in name.replace(",", "").split() if word[0].isupper())
        staff = tuple(
            StaffMember(person=Person(fake.last_name(), fake.first_name(), self._middle_initial()),
                        staff_id=f"E{rng.integers(100000, 999999)}", phone=self._phone())
            for _ in range(STAFF_PER_INSTITUTION)
        )
        return Institution(name=name, address=self._address(), phone=self._phone(),
                           department=DEPARTMENTS[rng.integers(len(DEPARTMENTS))],
                           code=code[:4], staff=staff)

    def patient(self, non_ascii: bool) -> Patient:
        fake, rng = self._fake, self._rng
        sex = "F" if rng.random() < 0.5 else "M"
        if non_ascii:
            person = self._non_ascii_person(sex)
        else:
            given = fake.first_name_female() if sex == "F" else fake.first_name_male()
            person = Person(fake.last_name().upper(), given.upper(), self._middle_initial())
        span = (YOUNGEST_BIRTH - OLDEST_BIRTH).days
        return Patient(
            person=person,
            sex=sex,
            birth_date=OLDEST_BIRTH + timedelta(days=int(rng.integers(span))),
            patient_id=str(rng.integers(10**6, 10**10)),
            other_patient_id=f"{rng.integers(100, 999)}-{rng.integers(10, 99)}-"
                             f"{rng.integers(1000, 9999)}",
            address=self._address(),
            phone=self._phone(),
            mother_birth_name=Person(fake.last_name().upper(), fake.first_name_female().upper()),
            ethnic_group=ETHNIC_GROUPS[rng.integers(len(ETHNIC_GROUPS))],
            height_m=round(float(rng.normal(1.63 if sex == "F" else 1.77, 0.07)), 2),
            weight_kg=round(float(rng.normal(70 if sex == "F" else 84, 12)), 1),
            contact=Person(person.family.title(), fake.first_name()),
            contact_relation=CONTACT_RELATIONS[rng.integers(len(CONTACT_RELATIONS))],
            character_set=NON_ASCII_CHARACTER_SET if non_ascii else DEFAULT_CHARACTER_SET,
        )

    def _non_ascii_person(self, sex: str) -> Person:
        faker = self._foreign[NON_ASCII_LOCALES[self._rng.integers(len(NON_ASCII_LOCALES))]]
        # Most draws of these locales hold a letter outside ASCII within a few tries.
        while True:
            given = faker.first_name_female() if sex == "F" else faker.first_name_male()
            person = Person(faker.last_name().upper(), given.upper())
            if not person.dicom_name.isascii():
                return person

    def _middle_initial(self) -> str:
        return "" if self._rng.random() < 0.5 else chr(ord("A") + int(self._rng.integers(26)))

    def _phone(self) -> str:
        # 555-01xx numbers are reserved for fiction.
        return f"({self._rng.integers(201, 990)}) 555-01{self._rng.integers(0, 100):02d}"

    def _address(self) -> str:
        fake = self._fake
        return (f"{fake.building_number()} {fake.street_name()}, {fake.city()}, "
                f"{fake.state_abbr()} {fake.zipcode()}")
