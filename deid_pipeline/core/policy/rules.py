"""The declarative policy file: rules that map elements to the source system's actions.

A rule matches on any of `tag` ("(0010,0010)"), `tag_pattern` ("(0019,xx92)", x = any hex
digit), `keyword`, `vr`, `private_creator` (+ `element`, the low byte of a private element) —
each a value or a list of values; all given keys must match. A bad file is rejected at load with
its line and the reason. Besides the rules: `ner` (free-text model), `slides` (SVS settings) and
`pixels` (fixed zones of burned-in PHI per device).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydicom.datadict import tag_for_keyword

from deid_pipeline.core.pixels.zones import UNITS, Zone

ACTIONS = frozenset({
    "replaceWithRandomName", "patientHashID", "hashID", "ensureTagExists", "replaceWithLiteral",
    "shiftUnixTimeStampRandom", "shiftDateRandomNbOfDays", "shiftDateFixedNbOfDays", "remove",
    "delete", "keep", "clean",
})
# Parameters each action takes; "value" and "days" are required where listed as such.
ACTION_PARAMETERS = {"replaceWithLiteral": {"value"}, "shiftDateFixedNbOfDays": {"days"},
                     "ensureTagExists": {"value"}}
REQUIRED_PARAMETERS = {"replaceWithLiteral": {"value"}, "shiftDateFixedNbOfDays": {"days"}}
MATCH_KEYS = frozenset({"tag", "tag_pattern", "keyword", "vr", "private_creator", "element"})
TAG_TEXT = re.compile(r"^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$")
TAG_PATTERN_TEXT = re.compile(r"^\(([0-9A-Fa-fXx]{4}),([0-9A-Fa-fXx]{4})\)$")
PACKAGED_DEFAULT = "default_policy.yaml"


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Rule:
    action: str
    source: str  # "file:line", recorded in the audit as the reason for each action
    tags: frozenset[int] = frozenset()
    tag_patterns: tuple[re.Pattern[str], ...] = ()
    vrs: frozenset[str] = frozenset()
    private_creators: frozenset[str] = frozenset()
    element: int | None = None
    value: Any = None
    days: int | None = None

    def matches(self, tag: int, vr: str, private_creator: str | None) -> bool:
        if self.tags and tag not in self.tags:
            return False
        if self.vrs and vr not in self.vrs:
            return False
        if self.private_creators and private_creator not in self.private_creators:
            return False
        if self.element is not None and (tag & 0xFF) != self.element:
            return False
        if self.tag_patterns and not any(p.match(f"{tag:08X}") for p in self.tag_patterns):
            return False
        return True


@dataclass(frozen=True)
class NerSettings:
    """A token-classification model on local disk that adds PHI spans to free-text cleaning."""

    model: Path
    labels: frozenset[str] | None = None  # None: the finder's default PHI labels
    min_score: float = 0.5


LABEL_MODES = frozenset({"drop", "pseudonym"})
SLIDE_KEY_LISTS = ("date_keys", "remove_keys", "keep_keys")


@dataclass(frozen=True)
class SlideSettings:
    """How SVS slides are de-identified (the `slides:` section). ImageDescription keys are matched
    without regard to case; a key in no list is removed. Empty settings keep nothing."""

    label: str = "drop"  # drop | pseudonym: replace the label with one that shows pseudonyms
    patient_key: str | None = None  # the ImageDescription key that links a slide to a patient
    date_keys: tuple[str, ...] = ()  # MM/DD/YY: shifted when linked to a patient, else removed
    remove_keys: tuple[str, ...] = ()  # identifying: removed, their values searched for after
    keep_keys: tuple[str, ...] = ()  # scientific: kept as they are
    keep_tiff_tags: frozenset[int] = frozenset()  # copied besides those describing the pixels


ZONE_KEYS = frozenset({"manufacturer", "model", "rows", "columns", "units", "boxes"})


@dataclass(frozen=True)
class PixelSettings:
    """The `pixels:` section: fixed zones blacked out on the devices they name, whatever the OCR
    reads. Each file's zones add to those of the files under it."""

    zones: tuple[Zone, ...] = ()


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    options: tuple[str, ...]
    shift_min_days: int
    shift_max_days: int
    sources: tuple[str, ...] = field(default=())
    ner: NerSettings | None = None
    slides: SlideSettings = SlideSettings()
    pixels: PixelSettings = PixelSettings()

    def element_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.action != "ensureTagExists")

    def ensured_tags(self) -> dict[int, Rule]:
        """Tags that must exist, with the rule that says so (first one wins)."""
        ensured: dict[int, Rule] = {}
        for rule in self.rules:
            if rule.action == "ensureTagExists":
                for tag in sorted(rule.tags):
                    ensured.setdefault(tag, rule)
        return ensured


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _parse_tag(text: Any, where: str) -> int:
    match = TAG_TEXT.match(str(text).strip())
    if not match:
        raise PolicyError(f"{where}: tag must look like (0010,0010), got {text!r}")
    return int(match.group(1) + match.group(2), 16)


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: a rule must be a mapping")
    action = raw.get("action")
    if action not in ACTIONS:
        raise PolicyError(f"{where}: unknown action {action!r} (known: {', '.join(sorted(ACTIONS))})")
    unknown = set(raw) - MATCH_KEYS - {"action"} - ACTION_PARAMETERS.get(action, set())
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for {action}")
    if not set(raw) & MATCH_KEYS:
        raise PolicyError(f"{where}: a rule needs at least one of {', '.join(sorted(MATCH_KEYS))}")
    missing = REQUIRED_PARAMETERS.get(action, set()) - set(raw)
    if missing:
        raise PolicyError(f"{where}: {action} needs {', '.join(sorted(missing))}")
    tags = {_parse_tag(t, where) for t in _as_list(raw.get("tag", []))}
    for keyword in _as_list(raw.get("keyword", [])):
        tag = tag_for_keyword(str(keyword))
        if tag is None:
            raise PolicyError(f"{where}: unknown DICOM keyword {keyword!r}")
        tags.add(tag)
    patterns = []
    for text in _as_list(raw.get("tag_pattern", [])):
        match = TAG_PATTERN_TEXT.match(str(text).strip())
        if not match:
            raise PolicyError(f"{where}: tag_pattern must look like (0019,xx92), got {text!r}")
        hex_pattern = (match.group(1) + match.group(2)).upper().replace("X", "[0-9A-F]")
        patterns.append(re.compile(hex_pattern + "$"))
    element = raw.get("element")
    if element is not None and not (isinstance(element, int) and 0 <= element <= 0xFF):
        raise PolicyError(f"{where}: element must be a number 0x00-0xFF, got {element!r}")
    if action == "ensureTagExists" and not tags:
        raise PolicyError(f"{where}: ensureTagExists needs an exact tag or keyword")
    days = raw.get("days")
    if days is not None and not isinstance(days, int):
        raise PolicyError(f"{where}: days must be a whole number, got {days!r}")
    return Rule(
        action=action, source=where, tags=frozenset(tags), tag_patterns=tuple(patterns),
        vrs=frozenset(str(v).upper() for v in _as_list(raw.get("vr", []))),
        private_creators=frozenset(str(c) for c in _as_list(raw.get("private_creator", []))),
        element=element, value=raw.get("value"), days=days,
    )


def _parse_document(text: str, name: str) -> tuple[dict, list[Rule], dict[str, int]]:
    """The document, its rules, and the line each top-level section's value starts on."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise PolicyError(f"{name}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{name}:1: a policy is a mapping with profile, dates and rules")
    unknown = set(document) - {"profile", "dates", "rules", "ner", "slides", "pixels"}
    if unknown:
        raise PolicyError(f"{name}:1: unknown section(s) {', '.join(sorted(unknown))}")
    rule_nodes = []
    lines = {}
    for key_node, value_node in node.value if node is not None else ():
        lines[key_node.value] = value_node.start_mark.line + 1
        if key_node.value == "rules":
            if not isinstance(value_node, yaml.SequenceNode):
                raise PolicyError(f"{name}:{value_node.start_mark.line + 1}: rules must be a list")
            rule_nodes = value_node.value
    rules = [
        _parse_rule(raw, f"{name}:{rule_node.start_mark.line + 1}")
        for raw, rule_node in zip(document.get("rules") or [], rule_nodes, strict=True)
    ]
    return document, rules, lines


def load_policy(user_files: Sequence[Path] = ()) -> Policy:
    """The packaged default with each user file layered on top (later files first in order)."""
    from deid_pipeline.core.policy.annex_e import OPTION_COLUMNS

    default_text = resources.files("deid_pipeline.core.policy").joinpath("data", PACKAGED_DEFAULT)
    documents = [(PACKAGED_DEFAULT, default_text.read_text())]
    for path in user_files:
        try:
            documents.append((str(path), Path(path).read_text()))
        except OSError as exc:
            raise PolicyError(f"{path}: cannot read policy ({exc.strerror})") from None
    rules: list[Rule] = []
    options: tuple[str, ...] = ()
    shift = (365, 3650)
    ner: NerSettings | None = None
    slides = SlideSettings()
    zones: tuple[Zone, ...] = ()
    for name, text in documents:
        document, file_rules, lines = _parse_document(text, name)
        rules = file_rules + rules
        profile = document.get("profile") or {}
        if "options" in profile:
            chosen = tuple(profile["options"] or ())
            bad = [o for o in chosen if o not in OPTION_COLUMNS]
            if bad:
                raise PolicyError(f"{name}:{lines['profile']}: unknown profile option(s) {', '.join(bad)} "
                                  f"(known: {', '.join(sorted(OPTION_COLUMNS))})")
            options = chosen
        days = (document.get("dates") or {}).get("shift_days")
        if days is not None:
            if not (isinstance(days, dict) and isinstance(days.get("min"), int)
                    and isinstance(days.get("max"), int) and 0 < days["min"] <= days["max"]):
                raise PolicyError(f"{name}:{lines['dates']}: dates.shift_days needs whole numbers 0 < min <= max")
            shift = (days["min"], days["max"])
        if "ner" in document:
            ner = _parse_ner(document["ner"], name, lines["ner"])
        if "slides" in document:
            slides = _parse_slides(document["slides"], name, lines["slides"], slides)
        if "pixels" in document:
            zones += _parse_pixels(document["pixels"], name, lines["pixels"], text)
    return Policy(rules=tuple(rules), options=options, shift_min_days=shift[0],
                  shift_max_days=shift[1], sources=tuple(name for name, _ in documents), ner=ner,
                  slides=slides, pixels=PixelSettings(zones))


def _parse_ner(raw: Any, name: str, line: int) -> NerSettings | None:
    """`ner: {model: PATH, labels: [PER, ...], min_score: 0.5}`; `ner: null` switches it off.
    A relative model path is taken from the policy file's folder."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), str):
        raise PolicyError(f"{name}:{line}: ner needs model: <folder of a saved token-classification model>")
    unknown = set(raw) - {"model", "labels", "min_score"}
    if unknown:
        raise PolicyError(f"{name}:{line}: unknown ner key(s) {', '.join(sorted(unknown))}")
    score = raw.get("min_score", 0.5)
    if not isinstance(score, int | float) or not 0 <= score <= 1:
        raise PolicyError(f"{name}:{line}: ner.min_score must be between 0 and 1")
    labels = raw.get("labels")
    model = Path(raw["model"])
    if not model.is_absolute() and name != PACKAGED_DEFAULT:
        model = Path(name).parent / model
    return NerSettings(model=model, min_score=float(score),
                       labels=frozenset(str(label).upper() for label in labels) if labels else None)


def _parse_slides(raw: Any, name: str, line: int, current: SlideSettings) -> SlideSettings:
    """`slides: {label, patient_key, date_keys, remove_keys, keep_keys, keep_tiff_tags}`. A later
    file replaces only the keys it names, so `slides: {label: pseudonym}` keeps the lists."""
    from tifffile import TIFF

    if not isinstance(raw, dict):
        raise PolicyError(f"{name}:{line}: slides must be a mapping")
    unknown = set(raw) - {"label", "patient_key", "keep_tiff_tags", *SLIDE_KEY_LISTS}
    if unknown:
        raise PolicyError(f"{name}:{line}: unknown slides key(s) {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    if "label" in raw:
        if raw["label"] not in LABEL_MODES:
            raise PolicyError(f"{name}:{line}: slides.label must be one of "
                              f"{', '.join(sorted(LABEL_MODES))}")
        changes["label"] = raw["label"]
    if "patient_key" in raw:
        if raw["patient_key"] is not None and not isinstance(raw["patient_key"], str):
            raise PolicyError(f"{name}:{line}: slides.patient_key must be a key name or null")
        changes["patient_key"] = raw["patient_key"]
    for key in SLIDE_KEY_LISTS:
        if key in raw:
            values = raw[key] or []
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise PolicyError(f"{name}:{line}: slides.{key} must be a list of key names")
            changes[key] = tuple(values)
    if "keep_tiff_tags" in raw:
        codes = set()
        for tag in raw["keep_tiff_tags"] or []:
            code = TIFF.TAGS.get(tag) if isinstance(tag, str) else tag
            if not isinstance(code, int) or TIFF.TAGS.get(code) is None:
                raise PolicyError(f"{name}:{line}: slides.keep_tiff_tags: unknown TIFF tag {tag!r}")
            codes.add(code)
        changes["keep_tiff_tags"] = frozenset(codes)
    settings = replace(current, **changes)
    kept = {k.casefold() for k in settings.keep_keys}
    both = sorted(k for k in (*settings.remove_keys, *settings.date_keys) if k.casefold() in kept)
    if both:
        raise PolicyError(f"{name}:{line}: slides key(s) both kept and removed: {', '.join(both)}")
    return settings


def _parse_pixels(raw: Any, name: str, line: int, text: str) -> tuple[Zone, ...]:
    """`pixels: {zones: [{manufacturer, model, rows, columns, units, boxes}, ...]}`."""
    if not isinstance(raw, dict) or set(raw) - {"zones"}:
        raise PolicyError(f"{name}:{line}: pixels must be a mapping with zones")
    entries = raw.get("zones") or []
    if not isinstance(entries, list):
        raise PolicyError(f"{name}:{line}: pixels.zones must be a list")
    # The line of each zone, for its errors and its source.
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    section = next(v for k, v in node.value if k.value == "pixels")
    zone_nodes = next((v.value for k, v in section.value if k.value == "zones"), [])
    return tuple(_parse_zone(entry, f"{name}:{zone_node.start_mark.line + 1}")
                 for entry, zone_node in zip(entries, zone_nodes, strict=True))


def _parse_zone(raw: Any, where: str) -> Zone:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: a zone must be a mapping")
    unknown = set(raw) - ZONE_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown zone key(s) {', '.join(sorted(unknown))}")
    if "manufacturer" not in raw:
        raise PolicyError(f"{where}: a zone needs manufacturer (a regular expression)")
    for key in ("manufacturer", "model"):
        try:
            re.compile(str(raw.get(key, ".*")))
        except re.error as exc:
            raise PolicyError(f"{where}: zone {key} is no regular expression ({exc})") from None
    units = raw.get("units", "pixels")
    if units not in UNITS:
        raise PolicyError(f"{where}: zone units must be one of {', '.join(sorted(UNITS))}")
    for key in ("rows", "columns"):
        if raw.get(key) is not None and not (isinstance(raw[key], int) and raw[key] > 0):
            raise PolicyError(f"{where}: zone {key} must be a positive whole number")
    boxes = raw.get("boxes")
    if not isinstance(boxes, list) or not boxes:
        raise PolicyError(f"{where}: a zone needs boxes: [[x1, y1, x2, y2], ...]")
    for box in boxes:
        if not _valid_box(box, units):
            raise PolicyError(f"{where}: zone box {box!r} must be [x1, y1, x2, y2], x1 <= x2 and "
                              f"y1 <= y2, in whole pixels or in fractions 0-1 (units: fraction)")
    return Zone(manufacturer=str(raw["manufacturer"]), model=str(raw.get("model", ".*")),
                boxes=tuple(tuple(box) for box in boxes), units=units, rows=raw.get("rows"),
                columns=raw.get("columns"), source=where)


def _valid_box(box: Any, units: str) -> bool:
    if not (isinstance(box, list) and len(box) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)):
        return False
    if box[0] > box[2] or box[1] > box[3] or min(box) < 0:
        return False
    if units == "pixels":
        return all(isinstance(v, int) for v in box)
    return max(box) <= 1
