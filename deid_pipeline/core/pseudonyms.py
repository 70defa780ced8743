"""Keyed pseudonyms: every replacement is an HMAC-SHA256 of the original under a secret, so the
same patient, UID or date maps the same way across files, runs and machines with no shared state,
and nobody without the secret can recompute or reverse the mapping.

Each kind of pseudonym hashes a purpose label with the original, so a UID and a patient ID with
the same text map to unrelated values. Originals are normalised first (DICOM padding, name case)
so that one value written two ways by two systems still maps to one pseudonym.

Date shifts move whole days, which keeps intervals, weekdays and times of day; age strings (AS)
need no shift and have no function here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from collections.abc import Mapping
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from faker import Faker

SECRET_VARIABLE = "DEID_SECRET"
SECRET_FILE_VARIABLE = "DEID_SECRET_FILE"
# DEID_ENV=production marks a deployment that handles real patients: no key is ever made up for
# it (only the demo makes one, outside production) and a short key is refused, since whoever
# holds a few originals with their pseudonyms could search a small key space.
ENVIRONMENT_VARIABLE = "DEID_ENV"
PRODUCTION = "production"
MIN_PRODUCTION_SECRET_BYTES = 32
HASH_ID_LENGTHS = {"SH": 16, "LO": 64}  # the VR's maximum length
_SECONDS_PER_DAY = 86_400
_PATIENT_ID_DIGITS = 16
_NAME_DRAWS = 20

_LEGACY_DA = re.compile(r"\d{4}\.\d{2}\.\d{2}")  # ACR-NEMA YYYY.MM.DD
_DA = re.compile(r"\d{8}")
_DT = re.compile(
    r"(?P<year>\d{4})(?:(?P<month>\d{2})(?:(?P<day>\d{2})"
    r"(?P<time>\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?"
    r"(?P<offset>[+-]\d{4})?")


class MissingSecretError(RuntimeError):
    """No usable secret: neither DEID_SECRET nor DEID_SECRET_FILE gives one, the file cannot be
    read, or (in production) it is too short. The message never quotes the secret."""


def is_production(env: Mapping[str, str] = os.environ) -> bool:
    return env.get(ENVIRONMENT_VARIABLE, "").strip().lower() == PRODUCTION


class Pseudonymizer:
    """Pseudonyms keyed by one secret. Per-patient date shifts fall between `min_shift_days` and
    `max_shift_days` days into the past."""

    def __init__(self, secret: bytes, *, min_shift_days: int = 365,
                 max_shift_days: int = 3650) -> None:
        if not secret:
            raise ValueError("the secret must not be empty")
        if not 0 < min_shift_days <= max_shift_days:
            raise ValueError("need 0 < min_shift_days <= max_shift_days, so that every date moves")
        self._secret = bytes(secret)
        self._min_shift_days = min_shift_days
        self._max_shift_days = max_shift_days

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ, *, min_shift_days: int = 365,
                         max_shift_days: int = 3650) -> Pseudonymizer:
        """From DEID_SECRET (the secret as text) or DEID_SECRET_FILE (a file holding it; a final
        newline is dropped so that `echo SECRET > file` and DEID_SECRET=SECRET agree). There is
        no default key, in any mode; with DEID_ENV=production the key must be at least
        MIN_PRODUCTION_SECRET_BYTES long."""
        text, path = env.get(SECRET_VARIABLE), env.get(SECRET_FILE_VARIABLE)
        if text and path:
            raise ValueError(f"set one of {SECRET_VARIABLE} and {SECRET_FILE_VARIABLE}, not both")
        if path:
            try:
                secret = Path(path).read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                raise MissingSecretError(
                    f"cannot read the file {SECRET_FILE_VARIABLE} names ({exc.strerror})") from None
        else:
            secret = (text or "").encode("utf-8")
        if not secret:
            raise MissingSecretError(
                f"no pseudonymisation secret: set {SECRET_VARIABLE} or {SECRET_FILE_VARIABLE}")
        if is_production(env) and len(secret) < MIN_PRODUCTION_SECRET_BYTES:
            raise MissingSecretError(
                f"the pseudonymisation secret is {len(secret)} bytes long; with "
                f"{ENVIRONMENT_VARIABLE}={PRODUCTION} it needs {MIN_PRODUCTION_SECRET_BYTES} at "
                "least (e.g. 64 hex digits from `openssl rand -hex 32`)")
        return cls(secret, min_shift_days=min_shift_days, max_shift_days=max_shift_days)

    def __repr__(self) -> str:
        return (f"Pseudonymizer(secret=<hidden>, "
                f"shift_days={self._min_shift_days}..{self._max_shift_days})")

    def _digest(self, purpose: str, original: str) -> bytes:
        message = purpose.encode("ascii") + b"\x00" + original.encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A `2.25.` UID (PS3.5 B.2) from 128 HMAC bits, 122 of them left after the UUID version
        and variant fields: at most 44 characters, no leading zeros."""
        # The NUL or space that pads a UID to even length is not part of it.
        value = int.from_bytes(self._digest("uid", original.rstrip("\x00 "))[:16], "big")
        # PS3.5 B.2 wants a UUID's integer: shape the bits as an RFC 9562 version 8 (custom,
        # hash-based) UUID, i.e. set its version and variant fields.
        value = (value & ~(0xF << 76)) | (0x8 << 76)
        value = (value & ~(0x3 << 62)) | (0x2 << 62)
        return f"2.25.{value}"

    def patient_id(self, original: str) -> str:
        """The patientHashID pseudonym: 16 digits, never a leading zero."""
        value = int.from_bytes(self._digest("patient_id", original.strip())[:8], "big")
        lowest = 10 ** (_PATIENT_ID_DIGITS - 1)
        return str(lowest + value % (9 * lowest))

    def hash_id(self, original: str, vr: str) -> str:
        """The hashID pseudonym: upper-case hex as long as the VR allows (SH 16, LO 64);
        a UID for UI."""
        if vr == "UI":
            return self.uid(original)
        if vr not in HASH_ID_LENGTHS:
            raise ValueError(f"hashID applies to LO, SH and UI values, not {vr}")
        return self._digest("hash_id", original.strip()).hex().upper()[:HASH_ID_LENGTHS[vr]]

    def person_name(self, original: str, sex: str | None, vr: str = "PN") -> str:
        """The replaceWithRandomName pseudonym: a realistic fake name, "Family^Given" for PN and
        "Given Family" for LO. The given name matches `sex` when it is M or F."""
        if vr not in ("PN", "LO"):
            raise ValueError(f"replaceWithRandomName applies to PN and LO values, not {vr}")
        # One person written "DOE^JOHN" by one system and "Doe^John^^" by another is one name.
        key = original.strip().rstrip("^=").casefold()
        seed = int.from_bytes(self._digest("person_name", key)[:8], "big")
        sex = (sex or "").strip().upper()
        real_parts = set(re.split(r"[\s^=,.\-']+", key.upper())) - {""}
        with _FAKER_LOCK:  # seeding then drawing must not interleave with another thread
            faker = _faker()
            faker.seed_instance(seed)
            # A fake that shares a word with the real name would leak that word: draw again (the
            # draws follow the seed, so the choice stays deterministic).
            for _ in range(_NAME_DRAWS):
                family = faker.last_name()
                given = (faker.first_name_male() if sex == "M"
                         else faker.first_name_female() if sex == "F" else faker.first_name())
                if not real_parts & {family.upper(), given.upper()}:
                    break
        return f"{family}^{given}" if vr == "PN" else f"{given} {family}"

    def date_offset_days(self, patient_key: str) -> int:
        """The shiftDateRandomNbOfDays offset for one patient: negative (into the past), never 0."""
        value = int.from_bytes(self._digest("date_offset", patient_key.strip())[:8], "big")
        span = self._max_shift_days - self._min_shift_days + 1
        return -(self._min_shift_days + value % span)


_FAKER_LOCK = threading.Lock()


@cache
def _faker() -> Faker:
    # A named locale, so that a machine's default locale cannot change the names. The names also
    # depend on Faker's word lists: the pinned Faker version is part of the mapping.
    return Faker("en_US")


def shift_date(da: str, days: int) -> str:
    """A DA value (YYYYMMDD, or legacy YYYY.MM.DD) moved by `days`, as YYYYMMDD; an empty value
    stays empty. Raises ValueError for anything else (the caller removes such a value), without
    quoting the value, which may itself identify someone."""
    text = da.strip()
    if not text:
        return ""
    if _LEGACY_DA.fullmatch(text):
        text = text.replace(".", "")
    if not _DA.fullmatch(text):
        raise ValueError(f"not a DICOM date (DA): expected YYYYMMDD, got {len(text)} characters")
    return _format_date(_moved(date(int(text[:4]), int(text[4:6]), int(text[6:])), days))


def shift_datetime(dt: str, days: int) -> str:
    """A DT value moved by `days`, keeping its precision, time part and UTC offset; an empty
    value stays empty. A partial value (YYYY or YYYYMM) stands for a year or a month: the middle
    of that period is moved and the result written with the same precision, so it lands where
    the complete dates inside it land. Raises ValueError for anything that is not a DT value."""
    text = dt.strip()
    if not text:
        return ""
    if (match := _DT.fullmatch(text)) is None:
        raise ValueError(f"not a DICOM date-time (DT): {len(text)} characters in no DT form")
    year, month, day = match["year"], match["month"], match["day"]
    offset = match["offset"] or ""
    if day is not None:
        moved = _moved(date(int(year), int(month), int(day)), days)
        return _format_date(moved) + (match["time"] or "") + offset
    if month is not None:
        moved = _moved(date(int(year), int(month), 15), days)
        return f"{moved.year:04d}{moved.month:02d}{offset}"
    moved = _moved(date(int(year), 7, 2), days)
    return f"{moved.year:04d}{offset}"


def shift_unix_timestamp(seconds: int, days: int) -> int:
    """A Unix timestamp (seconds) moved by `days` whole days (shiftUnixTimeStampRandom)."""
    return seconds + days * _SECONDS_PER_DAY


def _moved(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError as error:
        raise ValueError("the shifted date falls outside the years 1 to 9999") from error


def _format_date(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"
