import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest
from faker.providers.person.en_US import Provider as EnglishNames
from pydicom.uid import UID

from deid_pipeline.core.pseudonyms import (
    MissingSecretError,
    Pseudonymizer,
    shift_date,
    shift_datetime,
    shift_unix_timestamp,
)

SECRET = b"test secret, not for production"
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def pseudonym_sample(pseudonymizer: Pseudonymizer) -> dict:
    """One pseudonym of each kind, for comparing two instances or two processes."""
    return {
        "uid": pseudonymizer.uid("1.2.840.113619.2.55.3.604688119.971.1"),
        "patient_id": pseudonymizer.patient_id("PAT-000123"),
        "hash_id_sh": pseudonymizer.hash_id("ACC4711", "SH"),
        "hash_id_lo": pseudonymizer.hash_id("ACC4711", "LO"),
        "names": [pseudonymizer.person_name(f"DOE^PERSON{i}", sex) for i, sex in
                  enumerate(["M", "F", None, "O"] * 5)],
        "name_lo": pseudonymizer.person_name("DOE^JANE", "F", "LO"),
        "offset": pseudonymizer.date_offset_days("PAT-000123"),
    }


def test_same_secret_same_pseudonyms_across_instances():
    assert pseudonym_sample(Pseudonymizer(SECRET)) == pseudonym_sample(Pseudonymizer(SECRET))


def test_same_secret_same_pseudonyms_in_another_process():
    code = ("import json; from deid_pipeline.core.pseudonyms import Pseudonymizer; "
            "from deid_pipeline_tests.core.test_pseudonyms import pseudonym_sample; "
            "print(json.dumps(pseudonym_sample(Pseudonymizer.from_environment())))")
    # Another hash seed too: nothing may depend on Python's per-process string hashing.
    env = {**os.environ, "DEID_SECRET": SECRET.decode(), "PYTHONHASHSEED": "4711"}
    env.pop("DEID_SECRET_FILE", None)
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPOSITORY_ROOT,
                            capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(result.stdout) == pseudonym_sample(Pseudonymizer(SECRET))


def test_different_secrets_give_different_pseudonyms():
    one, other = pseudonym_sample(Pseudonymizer(SECRET)), pseudonym_sample(Pseudonymizer(b"other"))
    for kind in ("uid", "patient_id", "hash_id_sh", "hash_id_lo"):
        assert one[kind] != other[kind], kind
    assert one["names"] != other["names"]


def test_uids_are_valid_short_and_collision_free():
    pseudonymizer = Pseudonymizer(SECRET)
    uids = {pseudonymizer.uid(f"1.2.826.0.1.3680043.2.1125.{i}") for i in range(100_000)}
    assert len(uids) == 100_000
    for value in list(uids)[:2_000]:
        assert UID(value).is_valid and len(value) <= 64, value
        assert not re.search(r"\.0\d", value), value
        assert uuid.UUID(int=int(value.removeprefix("2.25."))).version == 8


def test_uid_ignores_padding():
    pseudonymizer = Pseudonymizer(SECRET)
    assert pseudonymizer.uid("1.2.3\x00") == pseudonymizer.uid("1.2.3")
    assert pseudonymizer.uid("1.2.3") != pseudonymizer.uid("1.2.34")


def test_kinds_are_domain_separated():
    pseudonymizer = Pseudonymizer(SECRET)
    text = "12345"
    # Without the purpose label a UID and a hash ID of one text would share their leading bits.
    version_and_variant = (0xF << 76) | (0x3 << 62)
    uid_bits = int(pseudonymizer.uid(text).removeprefix("2.25.")) & ~version_and_variant
    hash_bits = int(pseudonymizer.hash_id(text, "LO")[:32], 16) & ~version_and_variant
    assert uid_bits != hash_bits
    unlabelled = hmac.new(SECRET, text.encode(), hashlib.sha256).hexdigest().upper()
    assert pseudonymizer.hash_id(text, "LO") != unlabelled


def test_patient_ids_have_16_digits_without_leading_zero():
    pseudonymizer = Pseudonymizer(SECRET)
    ids = [pseudonymizer.patient_id(f"MRN{i}") for i in range(2_000)]
    assert all(re.fullmatch(r"[1-9]\d{15}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_hash_ids_fit_their_vr():
    pseudonymizer = Pseudonymizer(SECRET)
    assert re.fullmatch(r"[0-9A-F]{16}", pseudonymizer.hash_id("ACC4711", "SH"))
    assert re.fullmatch(r"[0-9A-F]{64}", pseudonymizer.hash_id("ACC4711", "LO"))
    assert pseudonymizer.hash_id("1.2.3", "UI") == pseudonymizer.uid("1.2.3")
    with pytest.raises(ValueError):
        pseudonymizer.hash_id("x", "PN")


def test_person_names_are_dicom_names_of_the_patients_sex():
    pseudonymizer = Pseudonymizer(SECRET)
    for i in range(200):
        male = pseudonymizer.person_name(f"PATIENT^NUMBER{i}", "M")
        female = pseudonymizer.person_name(f"PATIENT^NUMBER{i}", "F")
        for name, given_names in ((male, EnglishNames.first_names_male),
                                  (female, EnglishNames.first_names_female)):
            assert re.fullmatch(r"[^\^=\\]+\^[^\^=\\]+", name) and len(name) <= 64, name
            family, given = name.split("^")
            assert family in EnglishNames.last_names and given in given_names, name


def test_person_names_as_long_strings_and_normalised_originals():
    pseudonymizer = Pseudonymizer(SECRET)
    lo = pseudonymizer.person_name("DOE^JANE", "F", "LO")
    assert "^" not in lo and len(lo.split(" ")) >= 2
    same_person = pseudonymizer.person_name("DOE^JANE", "F")
    assert pseudonymizer.person_name("Doe^Jane^^ ", "F") == same_person
    with pytest.raises(ValueError):
        pseudonymizer.person_name("DOE^JANE", "F", "SH")


def test_date_offsets_are_in_range_and_never_zero():
    pseudonymizer = Pseudonymizer(SECRET)
    offsets = [pseudonymizer.date_offset_days(f"patient {i}") for i in range(2_000)]
    assert all(-3650 <= offset <= -365 for offset in offsets)
    assert len(set(offsets)) > 1_000
    narrow = Pseudonymizer(SECRET, min_shift_days=1, max_shift_days=2)
    assert {narrow.date_offset_days(f"patient {i}") for i in range(100)} == {-1, -2}
    with pytest.raises(ValueError):
        Pseudonymizer(SECRET, min_shift_days=0)


def test_shifts_keep_the_intervals_between_one_patients_dates():
    days = Pseudonymizer(SECRET).date_offset_days("PAT-000123")
    dates = ["20120101", "20120229", "20120301", "20131231"]
    shifted = [shift_date(value, days) for value in dates]

    def as_date(value):
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))

    for (a, b), (c, d) in zip(zip(dates, dates[1:]), zip(shifted, shifted[1:])):
        assert as_date(b) - as_date(a) == as_date(d) - as_date(c)


@pytest.mark.parametrize("value, days, expected", [
    ("20120229", 1, "20120301"),
    ("20120229", 365, "20130228"),
    ("20120229", -366, "20110228"),
    ("20130301", -366, "20120229"),
    ("2012.02.29", 1, "20120301"),
    ("20120315 ", -10, "20120305"),
    ("", -10, ""),
])
def test_shift_date(value, days, expected):
    assert shift_date(value, days) == expected


@pytest.mark.parametrize("value", ["2012022", "2012-02-29", "20120230", "20121301", "ABCDEFGH",
                                   "20120101-20121231"])
def test_shift_date_rejects_what_is_not_a_date_without_quoting_it(value):
    with pytest.raises(ValueError) as error:
        shift_date(value, 1)
    assert value not in str(error.value)


@pytest.mark.parametrize("value, days, expected", [
    ("20120315143000.123456+0100", -10, "20120305143000.123456+0100"),
    ("20120301000000-0500", -1, "20120229000000-0500"),
    ("2012031514", 1, "2012031614"),
    ("20120315", 1, "20120316"),
    ("201203", -400, "201102"),  # 2012-03-15 - 400 days = 2011-02-09
    ("2012", -400, "2011"),  # 2012-07-02 - 400 days = 2011-05-29
    ("2012+0100", -400, "2011+0100"),
    ("", 5, ""),
])
def test_shift_datetime(value, days, expected):
    assert shift_datetime(value, days) == expected


@pytest.mark.parametrize("value", ["2012031", "20120315143000.1234567", "20121315", "2012+01",
                                   "yesterday"])
def test_shift_datetime_rejects_what_is_not_a_datetime(value):
    with pytest.raises(ValueError):
        shift_datetime(value, 1)


def test_shift_unix_timestamp():
    assert shift_unix_timestamp(1_330_473_600, -1) == 1_330_387_200  # 2012-02-29 -> 2012-02-28


def test_the_secret_stays_out_of_repr_and_str():
    pseudonymizer = Pseudonymizer(SECRET)
    for text in (repr(pseudonymizer), str(pseudonymizer), f"{pseudonymizer!r}"):
        assert SECRET.decode() not in text and "hidden" in text


def test_secret_from_environment_or_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET + b"\n")
    from_file = Pseudonymizer.from_environment({"DEID_SECRET_FILE": str(secret_file)})
    from_variable = Pseudonymizer.from_environment({"DEID_SECRET": SECRET.decode()})
    assert pseudonym_sample(from_file) == pseudonym_sample(from_variable) == pseudonym_sample(
        Pseudonymizer(SECRET))
    with pytest.raises(ValueError, match="not both"):
        Pseudonymizer.from_environment({"DEID_SECRET": "a", "DEID_SECRET_FILE": str(secret_file)})


@pytest.mark.parametrize("env", [{}, {"DEID_SECRET": ""}, {"DEID_SECRET_FILE": ""}])
def test_missing_secret_raises_with_a_one_line_message(env):
    with pytest.raises(MissingSecretError) as error:
        Pseudonymizer.from_environment(env)
    assert "DEID_SECRET" in str(error.value) and "\n" not in str(error.value)
