"""The corpus' MIDI-B answer key: SQLite table `answer_data`, one row per original instance, built
from the facts the dataset builder recorded (never from the written files)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

from deid_pipeline.core.synth.facts import ElementFact, InstanceFacts, Role, SpanKind

TABLE = "answer_data"
COLUMNS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SOPClassUID",
           "PatientID", "scope", "AnswerData")
CHECK_FIELDS = ("action", "tag", "tag_ds", "tag_name", "value", "action_text")
ACTIONS = ("tag_retained", "text_notnull", "text_retained", "text_removed", "date_shifted",
           "uid_changed", "uid_consistent", "patid_consistent", "pixels_retained", "pixels_hidden")
ROLE_ACTIONS: dict[Role, tuple[str, ...]] = {
    Role.UID: ("uid_changed", "uid_consistent"),
    Role.PATIENT_ID: ("patid_consistent", "text_notnull"),
    Role.PSEUDONYM: ("text_removed", "text_notnull"),
    Role.IDENTIFYING: ("text_removed",),
    Role.DATE: ("date_shifted",),
    Role.REQUIRED: ("text_notnull",),
    Role.RETAINED: ("tag_retained",),
    Role.UNCHECKED: (),
}
PIXEL_DATA_TAG = 0x7FE00010


def wrap(text: str) -> str:
    """MIDI-B writes every string of a check in angle brackets."""
    return f"<{text}>"


def format_tag(tag: int) -> str:
    return f"({tag >> 16:04x},{tag & 0xFFFF:04x})"


def tag_path(fact: ElementFact) -> str:
    """`<(0008,1140)>[<0000>]<(0008,1155)>`; a private element as `<(0019,"GEMS_ACQU_01",92)>`."""
    steps = "".join(f"{wrap(format_tag(step.sequence_tag))}[{wrap(f'{step.index:04d}')}]"
                    for step in fact.path)
    if fact.private_creator is None:
        return steps + wrap(format_tag(fact.tag))
    group, element = fact.tag >> 16, fact.tag & 0xFF
    return steps + wrap(f'({group:04x},"{fact.private_creator}",{element:02x})')


def _check(action: str, fact: ElementFact, action_text: str = "") -> dict[str, str]:
    return {"action": wrap(action), "tag": wrap(format_tag(fact.tag)), "tag_ds": tag_path(fact),
            "tag_name": wrap(fact.name), "value": wrap(fact.value),
            "action_text": wrap(action_text)}


def element_checks(fact: ElementFact) -> list[dict[str, str]]:
    if fact.role is Role.FREE_TEXT:
        checks = []
        kept = " ".join(fact.free_text.texts(SpanKind.CLINICAL))
        if kept:
            checks.append(_check("text_retained", fact, kept))
        checks += [_check("text_removed", fact, phi) for phi in fact.free_text.texts(SpanKind.PHI)]
        return checks
    return [_check(action, fact, fact.value if action == "text_removed" else "")
            for action in ROLE_ACTIONS[fact.role]]


def pixel_checks(instance: InstanceFacts) -> list[dict[str, str]]:
    def check(action: str, action_text: str) -> dict[str, str]:
        tag = wrap(format_tag(PIXEL_DATA_TAG))
        return {"action": wrap(action), "tag": tag, "tag_ds": tag, "tag_name": wrap("PixelData"),
                "value": wrap(""), "action_text": wrap(action_text)}

    if not instance.burned_phi:
        return [check("pixels_retained", instance.pixel_data_md5)]
    return [
        check("pixels_hidden", json.dumps({"text": line.text, "top_left": list(line.top_left),
                                           "bottom_right": list(line.bottom_right)}))
        for line in instance.burned_phi
    ]


def instance_checks(instance: InstanceFacts) -> list[dict[str, str]]:
    checks = [check for fact in instance.elements for check in element_checks(fact)]
    return checks + pixel_checks(instance)


def write_answer_key(path: Path, instances: list[InstanceFacts]) -> Counter[str]:
    """Write the key (replacing an existing one); the number of checks of each action."""
    path.unlink(missing_ok=True)
    counts: Counter[str] = Counter()
    rows = []
    for instance in instances:
        checks = instance_checks(instance)
        counts.update(check["action"][1:-1] for check in checks)
        answer = {str(i): check for i, check in enumerate(checks)}
        rows.append((instance.sop_instance_uid, instance.study_instance_uid,
                     instance.series_instance_uid, instance.modality, instance.sop_class_uid,
                     instance.patient_id, wrap("Instance"), json.dumps(answer)))
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE {TABLE} ({', '.join(f'{c} TEXT' for c in COLUMNS)})")
        connection.executemany(
            f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(COLUMNS))})", rows
        )
    connection.close()  # the context manager commits but leaves the file open
    return counts
