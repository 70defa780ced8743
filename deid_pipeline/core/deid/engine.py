"""The tag engine: decide an action for every element at any depth and apply it.

Decision order per element: the policy's first matching rule, else the PS3.15 Annex E action for
the tag with the selected options (combined actions resolved by the attribute's type in the
file's IOD), else keep when the attribute is known safe, else delete. Decisions depend only on
(tag, VR, private creator, SOP class), so they are cached: a batch decides each kind of element
once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from importlib import resources
from typing import NamedTuple

import yaml
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import PIXEL_KEYWORDS, Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from deid_pipeline.core.deid import method
from deid_pipeline.core.deid.free_text import PhraseIndex, SpanFinder, clean_text, known_phrases
from deid_pipeline.core.deid.identifiers import IdentifyingValues, gather
from deid_pipeline.core.deid.raw_text import ascii_element, ascii_values
from deid_pipeline.core.policy.annex_e import (
    AnnexEProfile,
    attribute_type,
    load_profile,
    resolve_action,
)
from deid_pipeline.core.policy.rules import Policy
from deid_pipeline.core.pseudonyms import (
    Pseudonymizer,
    shift_date,
    shift_datetime,
    shift_unix_timestamp,
)

# Annex E codes in the project's action vocabulary.
PROFILE_ACTIONS = {"D": "dummy", "Z": "remove", "X": "delete", "K": "keep", "C": "clean",
                   "U": "hashID"}
# Values that replace an element the profile says to give a dummy (D): valid for the VR,
# identifying nobody.
DUMMY_VALUES = {
    "AE": "ANONYMOUS", "AS": "000Y", "CS": "ANONYMIZED", "DA": "19000101", "DS": "0",
    "DT": "19000101000000", "IS": "0", "LO": "ANONYMIZED", "LT": "ANONYMIZED", "PN": "ANONYMOUS",
    "SH": "ANONYMIZED", "ST": "ANONYMIZED", "TM": "000000", "UC": "ANONYMIZED", "UT": "ANONYMIZED",
    "UR": "", "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "UL": 0, "US": 0, "SV": 0, "UV": 0,
}
GENERATING_ACTIONS = frozenset({"replaceWithRandomName", "patientHashID", "hashID",
                                "replaceWithLiteral", "dummy", "remove"})
TEXT_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC"})
NUMERIC_VRS = frozenset({"SL", "SS", "UL", "US", "SV", "UV", "FL", "FD", "DS", "IS"})


@dataclass(frozen=True)
class Decision:
    action: str
    rule: str  # why: "policy default_policy.yaml:21", "annex-e X/Z type 2", "safe", ...
    literal: object = None
    days: int | None = None


class AuditRow(NamedTuple):
    """One element's fate. A tuple: a file has a couple of hundred, a batch millions."""

    path: str
    tag: str
    keyword: str
    action: str
    rule: str


@dataclass
class FileResult:
    """What de-identifying one dataset did: no original values, only mappings and actions."""

    uid_map: dict[str, str] = field(default_factory=dict)
    patient_id: tuple[str, str] | None = None  # (original, pseudonym)
    audit: list[AuditRow] = field(default_factory=list)
    # Element paths whose whole value the engine wrote (a fake name, a hash, a literal, a dummy):
    # nothing of the original is in them, whatever words they happen to share with it.
    generated: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class SafeAttributes:
    """Attributes kept although Table E.1-1 does not list them (safe_attributes.yaml)."""

    groups: frozenset[int]
    tags: frozenset[int]
    keyword_suffixes: tuple[str, ...]

    def __contains__(self, tag: int) -> bool:
        if (tag >> 16) in self.groups or tag in self.tags:
            return True
        keyword = keyword_for_tag(tag)
        return bool(keyword) and keyword.endswith(self.keyword_suffixes)


@lru_cache(maxsize=1)
def load_safe_attributes() -> SafeAttributes:
    text = resources.files("deid_pipeline.core.policy").joinpath("data", "safe_attributes.yaml")
    data = yaml.safe_load(text.read_text())
    return SafeAttributes(groups=frozenset(data["groups"]),
                          tags=frozenset(tag_for_keyword(k) for k in data["keywords"]),
                          keyword_suffixes=tuple(data["keyword_suffixes"]))


# The audit labels every element: a batch meets the same few hundred tags in every file.
@cache
def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@cache
def _keyword(tag: int) -> str:
    return keyword_for_tag(tag) or ""


class TagEngine:
    def __init__(self, policy: Policy, pseudonymizer: Pseudonymizer,
                 profile: AnnexEProfile | None = None) -> None:
        self.policy = policy
        self.pseudonymizer = pseudonymizer
        self.profile = profile or load_profile()
        self.element_rules = policy.element_rules()
        self.safe = load_safe_attributes()
        self._decisions: dict[tuple, Decision] = {}
        self._fake_names: dict[tuple[str, str | None, str], str] = {}
        self._span_finders: list[SpanFinder] | None = None

    def __getstate__(self) -> dict:
        # Worker processes load the NER model themselves, once each.
        return {**self.__dict__, "_span_finders": None}

    def span_finders(self) -> list[SpanFinder]:
        """Extra free-text PHI finders: the policy's NER model, loaded on first use."""
        if self._span_finders is None:
            self._span_finders = []
            if self.policy.ner is not None:
                from deid_pipeline.core.deid.ner import DEFAULT_PHI_LABELS, NerSpanFinder

                settings = self.policy.ner
                self._span_finders.append(NerSpanFinder(
                    settings.model, settings.labels or DEFAULT_PHI_LABELS, settings.min_score))
        return self._span_finders

    # -- deciding ---------------------------------------------------------------------------
    def decide(self, tag: int, vr: str, private_creator: str | None, sop_class: str) -> Decision:
        key = (tag, vr, private_creator, sop_class)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decisions[key] = self._decide(tag, vr, private_creator, sop_class)
        return decision

    def _decide(self, tag: int, vr: str, private_creator: str | None, sop_class: str) -> Decision:
        for rule in self.element_rules:
            if rule.matches(tag, vr, private_creator):
                return Decision(rule.action, f"policy {rule.source}", rule.value, rule.days)
        code = self.profile.action_for(tag, self.policy.options)
        if code is not None:
            keyword = keyword_for_tag(tag)
            attr_type = attribute_type(keyword, sop_class) if keyword else None
            resolved = resolve_action(code, attr_type)
            # U on a sequence (X/Z/U*) keeps its items and replaces the UIDs inside them.
            if resolved == "U" and vr not in ("UI", "SQ"):
                resolved = "D"
            how = f"annex-e {code}" + (f" type {attr_type}" if "/" in code else "")
            return Decision(PROFILE_ACTIONS[resolved], how)
        if BaseTag(tag).is_private:
            return Decision("delete", "private, not retained")
        if tag in self.safe:
            return Decision("keep", "safe attribute")
        return Decision("delete", "not in profile, not known safe")

    def fake_name(self, original: str, sex: str | None, vr: str) -> str:
        """The pseudonymizer's fake name, remembered: drawing it from Faker costs more than all
        other work on an element, and a batch meets the same few names in file after file."""
        key = (original, sex, vr)
        name = self._fake_names.get(key)
        if name is None:
            name = self._fake_names[key] = self.pseudonymizer.person_name(original, sex, vr)
        return name

    # -- applying ---------------------------------------------------------------------------
    def deidentify(self, ds: Dataset, known: IdentifyingValues | None = None) -> FileResult:
        """De-identify `ds` in place (file meta included) and say what was done. `known`: the
        file's identifying values when the caller already gathered them."""
        result = FileResult()
        known = known if known is not None else gather(ds)
        patient_key = str(ds.get("PatientID", "") or ds.get("PatientName", "")
                          or ds.get("StudyInstanceUID", ""))
        context = _FileContext(
            engine=self, result=result, known=known,
            sop_class=str(ds.get("SOPClassUID", "")),
            sex=str(ds.get("PatientSex", "") or "") or None,
            offset_days=self.pseudonymizer.date_offset_days(patient_key),
        )
        original_sop = str(ds.get("SOPInstanceUID", ""))
        if "PatientID" in ds:
            result.patient_id = (str(ds.PatientID), "")
        context.walk(ds, "")
        for tag, rule in self.policy.ensured_tags().items():
            if tag not in ds:
                ds.add_new(tag, dictionary_VR(tag), rule.value if rule.value is not None else "")
                result.audit.append(AuditRow(_tag_text(tag), _tag_text(tag),
                                             keyword_for_tag(tag), "ensureTagExists",
                                             f"policy {rule.source}"))
        if result.patient_id is not None:
            result.patient_id = (result.patient_id[0], str(ds.get("PatientID", "")))
        method.record(ds, self.policy.options)
        if getattr(ds, "file_meta", None) is not None:
            method.rewrite_file_meta(ds, result.uid_map.get(original_sop))
        return result


class PrivateBlocks:
    """A data set's private blocks as a walk meets them: the creator naming each element's block
    (read once a block), the creator elements met, and the blocks that keep an element (a
    creator whose block keeps none goes with it)."""

    def __init__(self, creator_of: Callable[[int], str | None]) -> None:
        self._creator_of = creator_of
        self._names: dict[int, str | None] = {}
        self._kept: set[int] = set()
        self.creators: list[int] = []

    def creator(self, tag: int) -> str | None:
        block = tag >> 8  # (group, block number)
        if block in self._names:
            return self._names[block]
        name = self._names[block] = self._creator_of(tag)
        return name

    def keep(self, tag: int) -> None:
        self._kept.add(tag >> 8)

    def unused(self) -> list[int]:
        """The creators whose block keeps no element."""
        return [tag for tag in self.creators
                if (tag >> 16) << 8 | (tag & 0xFF) not in self._kept]


@dataclass
class _FileContext:
    engine: TagEngine
    result: FileResult
    known: IdentifyingValues
    sop_class: str
    sex: str | None
    offset_days: int

    @cached_property
    def phrases(self) -> PhraseIndex:
        """What the free-text cleaner looks for, the same for every text of the file."""
        return PhraseIndex(known_phrases(self.known))

    def walk(self, ds: Dataset, prefix: str) -> None:
        # The data set's own dictionary, read directly: Dataset's item access converts its key
        # to a Tag and checks it, a couple of hundred times a file.
        elements = ds._dict
        blocks = PrivateBlocks(lambda tag: _creator_of(ds, BaseTag(tag)))
        decide, audit, generated = self.engine.decide, self.result.audit.append, self.result.generated
        sop_class = self.sop_class if not prefix else ""
        for key in list(elements):
            raw = elements[key]
            tag = int(key)  # a plain int: BaseTag compares equal to ints in Python, not in C
            element = tag & 0xFFFF
            if element == 0:  # group lengths are recomputed or meaningless after editing
                del ds[key]
                continue
            private = tag >> 16 & 1
            if private and 0x0010 <= element <= 0x00FF:  # a private creator
                blocks.creators.append(key)
                continue
            creator = blocks.creator(tag) if private else None
            vr = raw.VR or (dictionary_VR(tag) if not private else "UN")
            # Attribute types hold at the top level only; in an item the sequence's macro decides,
            # which the types table does not know ("" resolves as type unknown).
            decision = decide(tag, vr, creator, sop_class)
            tag_text = _tag_text(tag)
            path = prefix + tag_text
            kept = self.apply(ds, key, vr, decision, path)
            if kept:
                if decision.action in GENERATING_ACTIONS and vr != "SQ":
                    generated.add(path)
                if private:
                    blocks.keep(tag)
            audit(AuditRow(path, tag_text, _keyword(tag), decision.action, decision.rule))
        for key in blocks.unused():
            del ds[key]

    def apply(self, ds: Dataset, tag: BaseTag, vr: str, decision: Decision, path: str) -> bool:
        """Apply one decision; True when the element is still in the dataset afterwards."""
        action = decision.action
        if action == "delete":
            del ds[tag]
            return False
        if action == "keep" and vr != "SQ":
            return True
        if vr == "SQ":
            elem = ds[tag]
            if action in ("remove", "dummy"):
                elem.value = Sequence()
            elif action in ("keep", "clean", "hashID"):
                for index, item in enumerate(elem.value or ()):
                    self.walk(item, f"{path}[{index}].")
            else:
                del ds[tag]
                return False
            return True
        transform = self.transform_for(action, vr, decision)
        if transform is None:
            del ds[tag]
            return False
        raw = ds._dict[tag]
        values = ascii_values(raw, vr)
        if values is not None:
            new = self._transformed(values, transform, vr)
            replacement = ascii_element(raw, vr, new)
            if replacement is not None:
                if tag >> 16 & 1 or tag in PIXEL_KEYWORDS:
                    ds[tag] = replacement  # a private element is decoded, as pydicom does
                else:
                    ds._dict[tag] = replacement  # what Dataset.__setitem__ comes to
                return True
        elem = ds[tag]
        if elem.VR != vr:  # an ambiguous dictionary VR ("US or SS") settled by decoding
            transform = self.transform_for(action, elem.VR, decision)
            if transform is None:
                del ds[tag]
                return False
        values = elem.value if isinstance(elem.value, MultiValue | list) else [elem.value]
        new = self._transformed([v for v in values if v not in (None, "")], transform, elem.VR)
        elem.value = new[0] if len(new) == 1 else (new or ("" if elem.VR not in NUMERIC_VRS else None))
        return True

    def _transformed(self, values: list, transform: Callable, vr: str) -> list:
        try:
            new = [transform(v) for v in values]
        # A value the action cannot parse (a malformed date, say) is emptied, never passed on.
        except (ValueError, TypeError, OverflowError):
            new = []
        if vr == "UI":
            self.result.uid_map.update(
                (str(o), str(n)) for o, n in zip(values, new, strict=False) if o != n)
        return new

    def transform_for(self, action: str, vr: str, decision: Decision) -> Callable | None:
        p = self.engine.pseudonymizer
        days = decision.days if action == "shiftDateFixedNbOfDays" else self.offset_days
        if action == "remove":
            return lambda v: ""
        if action == "dummy":
            return (lambda v: DUMMY_VALUES[vr]) if vr in DUMMY_VALUES else None
        if action == "replaceWithLiteral":
            return lambda v: decision.literal
        if action == "hashID":
            return (lambda v: p.uid(str(v))) if vr == "UI" else (lambda v: p.hash_id(str(v), vr))
        if action == "patientHashID":
            return lambda v: p.patient_id(str(v))
        if action == "replaceWithRandomName":
            return lambda v: self.engine.fake_name(str(v), self.sex, vr)
        if action == "shiftUnixTimeStampRandom":
            return lambda v: shift_unix_timestamp(int(v), days)
        if action in ("shiftDateRandomNbOfDays", "shiftDateFixedNbOfDays", "clean"):
            if vr == "DA":
                return lambda v: shift_date(str(v), days)
            if vr == "DT":
                return lambda v: shift_datetime(str(v), days)
            if action == "clean" and vr in TEXT_VRS:
                finders = self.engine.span_finders()
                return lambda v: clean_text(str(v), self.known, finders, self.phrases)
            if action == "clean" and vr == "PN":
                return lambda v: self.engine.fake_name(str(v), self.sex, "PN")
            # Times, ages and other values carry no date to move: kept as they are.
            return lambda v: v
        if action == "keep":
            return lambda v: v
        return None


def _creator_of(ds: Dataset, tag: BaseTag) -> str | None:
    creator = ds.get((tag.group, tag.element >> 8))
    return str(creator.value) if creator is not None else None
