"""The ten MIDI-B checks over an output tree, an answer key and the de-identifier's mapping files.

Formats and semantics: `shared/reference/midi-b-validation.md`. One validator serves the
synthetic corpus and a real MIDI-B key a user owns.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from deid_pipeline.core.validate.text_rule import is_removed, is_retained

CHECKS = ("tag_retained", "text_notnull", "text_retained", "text_removed", "date_shifted",
          "uid_changed", "uid_consistent", "patid_consistent", "pixels_retained", "pixels_hidden")
# A missing output file passes these: nothing identifying can be left in a file that is not there.
PASS_WHEN_MISSING = frozenset({"text_removed", "date_shifted", "uid_changed", "pixels_hidden"})
RESULT_COLUMNS = ("check_passed", "check_score", "action", "action_text", "file_value",
                  "answer_value", "tag", "tag_ds", "tag_name", "modality", "class", "patient",
                  "study", "series", "instance", "category", "subcategory")
# Fixed column types, so that a day without checks writes a table of the same schema as the others.
RESULT_TYPES = {"check_passed": "bool", "check_score": "int64",
                **{column: "str" for column in RESULT_COLUMNS[2:]}}
# Markers OCR may still read in a hidden box without anything identifying being left: the
# "DOB:" label and sex markers such as "[M]" (any one letter in brackets).
IGNORED_IN_PIXELS = re.compile(r"\bdob\s*:?|\[\s*[^\W\d_]\s*\]", re.IGNORECASE)
# A binary value longer than this is data (pixels, a waveform), not text that a check could read.
MAX_BINARY_TEXT = 1 << 16
SCOPES = ("Instance", "Series", "Study", "Patient")
# The reference program's category of a check (HIPAA, DICOM standard, TCIA best practice): fixed
# for some actions, else the first of the key's answer_category_v2 fields that is set.
FIXED_CATEGORIES = {
    "date_shifted": ("hipaa", "HIPAA-C"), "uid_changed": ("hipaa", "HIPAA-R"),
    "pixels_hidden": ("hipaa", "HIPAA-A"), "patid_consistent": ("dicom", "DICOM-P15-BASIC-C"),
    "uid_consistent": ("dicom", "DICOM-P15-BASIC-U"), "pixels_retained": ("tcia", "TCIA-P15-PIX-K"),
}
CATEGORY_FIELDS = {
    "tag_retained": (("dicom", "dicom_iod"),), "text_notnull": (("dicom", "dicom_iod"),),
    "text_removed": (("hipaa", "hipaa_m"), ("hipaa", "hipaa_z"), ("tcia", "tcia_p15"),
                     ("tcia", "tcia_ptkb"), ("tcia", "tcia_rev")),
    "text_retained": (("tcia", "tcia_p15"), ("tcia", "tcia_ptkb"), ("tcia", "tcia_rev")),
}
UNKNOWN_CATEGORY = ("unknown", "unknown")
STEP = re.compile(
    r'<\((?P<group>[0-9a-fA-F]{4}),(?:"(?P<creator>[^"]*)",(?P<offset>[0-9a-fA-F]{2})'
    r'|(?P<element>[0-9a-fA-F]{4}))\)>(?:\[<(?P<index>\d+)>\])?')

# Reads the text in a box of an image: (dataset, (x1, y1, x2, y2)) -> text.
BoxReader = Callable[[Dataset, tuple[int, int, int, int]], str]


def unwrap(text: object) -> str:
    """A key's field without its angle brackets; a number where text belongs, as text."""
    text = "" if text is None else str(text)
    return text[1:-1] if text.startswith("<") and text.endswith(">") else text


@dataclass(frozen=True)
class AnswerCheck:
    instance: str
    study: str
    series: str
    modality: str
    sop_class: str
    patient: str
    action: str  # one of CHECKS
    tag: str
    tag_ds: str  # with its brackets: the element's path
    tag_name: str
    value: str
    action_text: str
    scope: str = "Instance"  # one of SCOPES: the files of the instance, series or study
    category: tuple[str, str] = UNKNOWN_CATEGORY  # (category, subcategory), category_of


def category_of(action: str, categories: object) -> tuple[str, str]:
    """(category, subcategory) of a check as the reference program reports it, from its action
    and its answer_category_v2 fields (a real key's; the synthetic one has none)."""
    if action in FIXED_CATEGORIES:
        return FIXED_CATEGORIES[action]
    fields = categories if isinstance(categories, dict) else {}
    for category, field in CATEGORY_FIELDS.get(action, ()):
        if fields.get(field):
            return category, str(fields[field])
    return UNKNOWN_CATEGORY


@dataclass(frozen=True)
class Output:
    """A de-identified file and the original series and study it came from."""

    path: Path
    series: str
    study: str


class AnswerKeyError(ValueError):
    """The file is not a MIDI-B answer key."""


def load_answer_key(path: Path) -> list[AnswerCheck]:
    """Every check of the key; checks of an action MIDI-B does not define are left out, as the
    reference program leaves them."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(answer_data)")}
            scope = "scope" if "scope" in columns else "NULL"
            rows = db.execute(
                "SELECT SOPInstanceUID, StudyInstanceUID, SeriesInstanceUID, Modality,"
                f" SOPClassUID, PatientID, {scope}, AnswerData FROM answer_data").fetchall()
    except sqlite3.DatabaseError:  # not SQLite, or without the answer_data table
        raise AnswerKeyError(f"not a MIDI-B answer key (SQLite with an answer_data table): "
                             f"{path}") from None
    checks = []
    for sop, study, series, modality, sop_class, patient, scope, answer_data in rows:
        scope = unwrap(scope).capitalize() or "Instance"
        if scope not in SCOPES:
            raise AnswerKeyError(f"not a MIDI-B answer key: scope {scope!r} in {path}")
        try:
            entries = json.loads(answer_data or "{}").values()
        except (json.JSONDecodeError, AttributeError):
            raise AnswerKeyError(f"not a MIDI-B answer key: AnswerData is not a JSON object "
                                 f"in {path}") from None
        for entry in entries:
            if not isinstance(entry, dict) or unwrap(entry.get("action")) not in CHECKS:
                continue
            checks.append(AnswerCheck(
                instance=sop or "", study=study or "", series=series or "",
                modality=modality or "", sop_class=sop_class or "", patient=patient or "",
                action=unwrap(entry.get("action")), tag=unwrap(entry.get("tag")),
                tag_ds=str(entry.get("tag_ds") or entry.get("tag") or ""),
                tag_name=unwrap(entry.get("tag_name")), value=unwrap(entry.get("value")),
                action_text=unwrap(entry.get("action_text")), scope=scope,
                category=category_of(unwrap(entry.get("action")),
                                     entry.get("answer_category_v2"))))
    return checks


def load_mapping(path: Path) -> dict[str, str]:
    if not Path(path).exists():
        return {}
    with open(path, newline="") as fh:
        return {row["id_old"]: row["id_new"] for row in csv.DictReader(fh)}


def find_element(ds: Dataset, tag_ds: str) -> DataElement | None:
    """The element at a MIDI-B path such as `<(0008,1140)>[<0000>]<(0008,1155)>` or
    `<(0019,"GEMS_ACQU_01",92)>`; None when any step is absent."""
    steps = list(STEP.finditer(tag_ds))
    if not steps:
        return None
    current: Dataset = ds
    if steps[0]["group"] == "0002":  # file meta: the file's own, not its data set's
        current = getattr(ds, "file_meta", None) or Dataset()
    for position, step in enumerate(steps):
        group = int(step["group"], 16)
        if step["creator"] is not None:
            try:
                block = current.private_block(group, step["creator"])
                elem = block[int(step["offset"], 16)]
            except KeyError:
                return None
        else:
            tag = (group << 16) | int(step["element"], 16)
            if tag not in current:
                return None
            elem = current[tag]
        if position == len(steps) - 1:
            return elem
        index = int(step["index"] or 0)
        if elem.VR != "SQ" or index >= len(elem.value or ()):
            return None
        current = elem.value[index]
    return None


def element_text(elem: DataElement | None) -> str:
    if elem is None or elem.value is None:
        return ""
    if elem.VR == "SQ":
        return f"<{len(elem.value)} item(s)>"
    if isinstance(elem.value, bytes):
        # Private and unknown-VR elements come as bytes: what text they hold is read as Latin-1
        # (any byte decodes), so that a removal check sees it.
        if len(elem.value) > MAX_BINARY_TEXT:
            return f"<{len(elem.value)} bytes>"
        return elem.value.decode("latin-1").rstrip("\x00 ")
    if elem.VM > 1:
        return "\\".join(str(v) for v in elem.value)
    return str(elem.value)


class MidibValidator:
    def __init__(self, answers: list[AnswerCheck], uid_map: dict[str, str],
                 patid_map: dict[str, str], read_box: BoxReader | None = None) -> None:
        self.answers = answers
        self.uid_map = uid_map
        self.patid_map = patid_map
        self.read_box = read_box

    @classmethod
    def from_files(cls, answer_key: Path, mappings: Path,
                   read_box: BoxReader | None = None) -> MidibValidator:
        return cls(load_answer_key(answer_key), load_mapping(Path(mappings) / "uid_mapping.csv"),
                   load_mapping(Path(mappings) / "patid_mapping.csv"), read_box)

    def index_outputs(self, output_root: Path) -> dict[str, Output]:
        """Original SOP Instance UID → output file with its original series and study, through
        the UID mapping."""
        original_of = {new: old for old, new in self.uid_map.items()}
        index = {}
        for path in sorted(Path(output_root).rglob("*")):
            if not path.is_file():
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
                    "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"])
            except Exception:  # noqa: BLE001 - a non-DICOM file in the tree matches no answer
                continue
            sop = str(ds.get("SOPInstanceUID", "") or "")
            if sop:
                series, study = (str(ds.get(k, "") or "") for k in ("SeriesInstanceUID",
                                                                     "StudyInstanceUID"))
                index[original_of.get(sop, sop)] = Output(
                    path, original_of.get(series, series), original_of.get(study, study))
        return index

    def evaluate(self, check: AnswerCheck, ds: Dataset | None) -> tuple[bool, str]:
        """(passed, the value found in the file)."""
        if ds is None:
            return check.action in PASS_WHEN_MISSING, ""
        if check.action == "pixels_retained":
            pixels = ds.get("PixelData")
            digest = hashlib.md5(pixels).hexdigest() if pixels is not None else ""
            return digest == check.action_text.lower(), digest
        if check.action == "pixels_hidden":
            box = json.loads(check.action_text)
            (x1, y1), (x2, y2) = box["top_left"], box["bottom_right"]
            read = self.read_box(ds, (x1, y1, x2, y2)) if self.read_box else ""
            expected = IGNORED_IN_PIXELS.sub(" ", box["text"])
            return is_removed(expected, IGNORED_IN_PIXELS.sub(" ", read)), read
        elem = find_element(ds, check.tag_ds)
        value = element_text(elem)
        action = check.action
        if action == "tag_retained":
            return elem is not None, value
        if action == "text_notnull":
            return elem is not None and value.strip() != "", value
        if action == "text_retained":
            return elem is not None and is_retained(check.action_text or check.value, value), value
        if action == "text_removed":
            return is_removed(check.action_text or check.value, value), value
        if action in ("date_shifted", "uid_changed"):
            # Multi-valued: the values' separators are no part of a date or UID.
            original = check.value.replace("\\", "")
            return not original or original not in value.replace("\\", ""), value
        if action == "uid_consistent":
            return elem is None or value == self.uid_map.get(check.value), value
        if action == "patid_consistent":
            return elem is None or value == self.patid_map.get(check.value), value
        raise ValueError(f"unknown check {check.action!r}")

    def results(self, output_root: Path) -> pd.DataFrame:
        return results_frame(self._rows(self.index_outputs(output_root)))

    def _rows(self, index: dict[str, Output]) -> Iterator[dict]:
        """Each check on each output file its scope takes in (its instance; every file of its
        series; of its study, for study and patient scope); a check that takes in no file is
        judged as on a missing file."""
        in_series: dict[str, list[str]] = {}
        in_study: dict[str, list[str]] = {}
        for sop, output in index.items():
            in_series.setdefault(output.series, []).append(sop)
            in_study.setdefault(output.study, []).append(sop)
        on_file: dict[str, list[AnswerCheck]] = {}
        missing: list[AnswerCheck] = []
        for check in self.answers:
            if check.action == "pixels_hidden" and self.read_box is None:
                continue  # without a reader nothing can be said about burned-in text
            files = ([check.instance] if check.instance in index else []
                     if check.scope == "Instance" else
                     in_series.get(check.series, []) if check.scope == "Series" else
                     in_study.get(check.study, []))
            for sop in files:
                on_file.setdefault(sop, []).append(check)
            if not files:
                missing.append(check)
        for sop, checks in on_file.items():
            ds = pydicom.dcmread(index[sop].path)
            for check in checks:
                yield self._row(check, sop, ds)
        for check in missing:
            yield self._row(check, check.instance, None)

    def _row(self, check: AnswerCheck, instance: str, ds: Dataset | None) -> dict:
        passed, found = self.evaluate(check, ds)
        return {
            "check_passed": passed, "check_score": int(passed),
            "action": f"<{check.action}>", "action_text": check.action_text,
            "file_value": found, "answer_value": check.value, "tag": check.tag,
            "tag_ds": check.tag_ds, "tag_name": check.tag_name, "modality": check.modality,
            "class": check.sop_class, "patient": check.patient, "study": check.study,
            "series": check.series, "instance": instance,
            "category": check.category[0], "subcategory": check.category[1],
        }


def results_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Check results in RESULT_COLUMNS with RESULT_TYPES; no rows give an empty table."""
    return pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS)).astype(RESULT_TYPES)


def scoring(results: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail per check kind and overall, as the reference report's Scoring sheet."""
    by_action = results.groupby("action")["check_passed"].agg(Pass="sum", Total="count")
    by_action["Fail"] = by_action["Total"] - by_action["Pass"]
    total = pd.DataFrame({"Pass": [by_action["Pass"].sum()], "Total": [by_action["Total"].sum()],
                          "Fail": [by_action["Fail"].sum()]}, index=["All"])
    table = pd.concat([by_action, total])
    table["Score"] = (table["Pass"] / table["Total"]).round(6)
    return table.rename_axis("Category").reset_index()[["Category", "Fail", "Pass", "Total", "Score"]]


def worst_per_series(results: pd.DataFrame) -> pd.DataFrame:
    """One row per series and check (action, element, values), failed where it failed on any
    file of the series: the reference's per-series score keeps each series' worst result."""
    keys = ["series", "action", "tag", "tag_ds", "tag_name", "answer_value", "action_text"]
    worst = results.groupby(keys, sort=False, dropna=False)["check_passed"].min().reset_index()
    return worst.assign(check_score=worst["check_passed"].astype("int64"))
