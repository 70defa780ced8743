"""PS3.15 Annex E, Table E.1-1, as the project's own table: the action in force for a tag under
the selected profile options, and how a combined action (X/Z/D, ...) resolves for an attribute of
a given type.

The packaged table `data/annex_e_profile.json` is generated from the innolitics/dicom-standard
extraction of Table E.1-1 (MIT licence, `data/LICENSE-innolitics-dicom-standard.txt`):

    python -m deid_pipeline.core.policy.annex_e ../shared/reference/dicom_ps3.15_table_e.1-1.json

Option precedence. A selected option's column replaces the Basic Profile action for the attributes
it names. When several selected options name one attribute and disagree, Clean (C) wins over
Retain (K): a Retain option keeps information the Basic Profile would remove, a Clean option says
that information may stay only once its identifying parts are gone, and cleaning keeps what the
Retain option wanted while honouring the Clean option. In the table this happens only for device
calibration dates under Retain Device Identity (K) with Retain Longitudinal Temporal Information
Modified Dates (C): the calibration date is shifted like every other date instead of staying the
one real date among shifted ones. The two Longitudinal Temporal options (Full Dates keeps every
date, Modified Dates shifts every date) are alternatives; selecting both is an error.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import yaml
from pydicom.tag import BaseTag

PROFILE_FILE = "annex_e_profile.json"
LICENSE_FILE = "LICENSE-innolitics-dicom-standard.txt"
ATTRIBUTE_TYPES_FILE = "attribute_types.yaml"

# Option name (the project's, used in policy files) -> column of Table E.1-1 in the source data.
OPTION_COLUMNS: Mapping[str, str] = MappingProxyType({
    "retain_longitudinal_full_dates": "rtnLongFullDatesOpt",
    "retain_longitudinal_modified_dates": "rtnLongModifDatesOpt",
    "retain_patient_characteristics": "rtnPatCharsOpt",
    "retain_device_identity": "rtnDevIdOpt",
    "retain_institution_identity": "rtnInstIdOpt",
    "retain_uids": "rtnUIDsOpt",
    "retain_safe_private": "rtnSafePrivOpt",
    "clean_descriptors": "cleanDescOpt",
    "clean_structured_content": "cleanStructContOpt",
    "clean_graphics": "cleanGraphOpt",
})


class MethodCode(NamedTuple):
    """A CID 7050 De-identification Method code, for the De-identification Method Code Sequence
    (0012,0064). It unpacks as (value, meaning); the coding scheme is always DCM."""

    value: str
    meaning: str

    @property
    def scheme_designator(self) -> str:
        return "DCM"


BASIC_PROFILE_CODE = MethodCode("113100", "Basic Application Confidentiality Profile")
CLEAN_PIXEL_DATA_CODE = MethodCode("113101", "Clean Pixel Data Option")
CLEAN_RECOGNIZABLE_VISUAL_FEATURES_CODE = MethodCode(
    "113102", "Clean Recognizable Visual Features Option")
OPTION_CODES: Mapping[str, MethodCode] = MappingProxyType({
    "clean_graphics": MethodCode("113103", "Clean Graphics Option"),
    "clean_structured_content": MethodCode("113104", "Clean Structured Content Option"),
    "clean_descriptors": MethodCode("113105", "Clean Descriptors Option"),
    "retain_longitudinal_full_dates":
        MethodCode("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain_longitudinal_modified_dates":
        MethodCode("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain_patient_characteristics": MethodCode("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": MethodCode("113109", "Retain Device Identity Option"),
    "retain_uids": MethodCode("113110", "Retain UIDs Option"),
    "retain_safe_private": MethodCode("113111", "Retain Safe Private Option"),
    "retain_institution_identity": MethodCode("113112", "Retain Institution Identity Option"),
})

# The standard's action codes: D dummy, Z zero-length, X remove, K keep, C clean, U replace UID.
ACTIONS = frozenset("DZXKCU")
ATTRIBUTE_TYPES = frozenset({"1", "1C", "2", "2C", "3"})
# An option column only ever keeps or cleans; anything else in a new edition needs a human look.
_OPTION_ACTIONS = frozenset("KC")
_OPTION_ACTION_PRECEDENCE = ("C", "K")  # see the module docstring
_ALTERNATIVE_OPTIONS = frozenset({"retain_longitudinal_full_dates",
                                  "retain_longitudinal_modified_dates"})
# Per attribute type, the offered actions that keep the IOD conformant, least disclosure first.
# A dummy (D, or U: new UIDs inside a sequence) satisfies every type; empty (Z) satisfies 2 and 3.
_CONFORMANT_ACTIONS = {
    "1": ("D", "U"), "1C": ("D", "U"),
    "2": ("Z", "D", "U"), "2C": ("Z", "D", "U"),
    "3": ("X", "Z", "D", "U"),
}
# Type unknown: the action that is conformant whatever the type. D or U satisfy even type 1; when
# neither is offered (X/Z) the standard has no type 1 use of the attribute, and Z satisfies 2 and
# 3. X is never safe blind: removing a type 1 or 2 attribute breaks the IOD.
_CONFORMANT_WHATEVER_THE_TYPE = ("D", "U", "Z")

_SOURCE_FIELDS = frozenset({"name", "tag", "stdCompIOD", "basicProfile", "id"}) | frozenset(
    OPTION_COLUMNS.values())
PRIVATE_ATTRIBUTES_TAG = "(GGGG,EEEE) WHERE GGGG IS ODD"
_TAG_TEXT = re.compile(r"\(([0-9A-FX]{4}),([0-9A-FX]{4})\)")
PROVENANCE = {
    "source": "DICOM PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes), "
              "as extracted by the innolitics/dicom-standard project "
              "(https://github.com/innolitics/dicom-standard), file dicom_ps3.15_table_e.1-1.json",
    "license": "MIT License, Copyright (c) 2017 Innolitics, LLC.; full text in "
               f"{LICENSE_FILE} beside this file",
    "generated_by": "python -m deid_pipeline.core.policy.annex_e SOURCE_JSON",
    "format": "attributes maps each tag as the standard writes it ((50XX,XXXX): X is any hex "
              f"digit; {PRIVATE_ATTRIBUTES_TAG}) to its name, its Basic Profile action code and "
              "the action code of each option that names it",
}


def build_profile(source_rows: Sequence[Mapping[str, str]]) -> dict:
    """The project's table from the innolitics rows of Table E.1-1 (one dict per attribute).

    Raises ValueError on anything this module would not interpret correctly (an unknown column,
    action code or tag form, a repeated tag), so a new edition of the source is looked at before
    it is packaged."""
    attributes: dict[str, dict] = {}
    for row in source_rows:
        tag = row["tag"]
        if unknown := set(row) - _SOURCE_FIELDS:
            raise ValueError(f"{tag}: unknown column(s) {sorted(unknown)}")
        if tag != PRIVATE_ATTRIBUTES_TAG and not _TAG_TEXT.fullmatch(tag):
            raise ValueError(f"unexpected tag form {tag!r}")
        if tag in attributes:
            raise ValueError(f"{tag} is listed twice")
        if not set(row["basicProfile"].split("/")) <= ACTIONS | {"U*"}:
            raise ValueError(f"{tag}: unknown action code {row['basicProfile']!r}")
        options = {option: row[column]
                   for option, column in OPTION_COLUMNS.items() if column in row}
        if not set(options.values()) <= _OPTION_ACTIONS:
            raise ValueError(f"{tag}: option actions {options} are not K or C")
        attributes[tag] = {"name": row["name"], "basic_profile": row["basicProfile"],
                           "options": options}
    return {"provenance": PROVENANCE, "attributes": attributes}


def render_profile(profile: Mapping) -> str:
    """The packaged file's text: the provenance header first, then everything sorted and
    indented, so that a regeneration diffs line by line."""
    ordered = {"provenance": _sorted_keys(profile["provenance"]),
               "attributes": _sorted_keys(profile["attributes"])}
    return json.dumps(ordered, indent=2) + "\n"


def _sorted_keys(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    return value


@dataclass(frozen=True)
class ProfileEntry:
    tag: str  # as the standard writes it: "(0010,0010)", "(60XX,3000)", PRIVATE_ATTRIBUTES_TAG
    name: str
    basic_profile: str  # an action code, possibly combined ("X/Z/D")
    options: Mapping[str, str]  # option name -> action code, for the options naming this attribute

    def action(self, selected_options: Collection[str]) -> str:
        """The action code in force when `selected_options` (validated names) are selected."""
        option_actions = [code for option, code in self.options.items()
                          if option in selected_options]
        if not option_actions:
            return self.basic_profile
        return min(option_actions, key=_OPTION_ACTION_PRECEDENCE.index)


class AnnexEProfile:
    """Table E.1-1 looked up by tag. An exact tag wins over a row with wildcards; any tag in an odd
    group is a private attribute (PS3.5 7.8), whatever its element."""

    def __reduce__(self) -> tuple:
        # Worker processes get a copy: rebuild from plain dicts (mapping proxies do not pickle).
        attributes = {e.tag: {"name": e.name, "basic_profile": e.basic_profile,
                              "options": dict(e.options)} for e in self._entries}
        return (AnnexEProfile, (attributes,))

    def __init__(self, attributes: Mapping[str, Mapping]) -> None:
        self._entries = tuple(
            ProfileEntry(tag, fields["name"], fields["basic_profile"],
                         MappingProxyType(dict(fields["options"])))
            for tag, fields in sorted(attributes.items()))
        self._exact: dict[int, ProfileEntry] = {}
        self._private: ProfileEntry | None = None
        patterns: list[tuple[int, int, ProfileEntry]] = []
        for entry in self._entries:
            if entry.tag == PRIVATE_ATTRIBUTES_TAG:
                self._private = entry
            elif "X" in (digits := _tag_digits(entry.tag)):
                mask = int("".join("0" if d == "X" else "F" for d in digits), 16)
                patterns.append((mask, int(digits.replace("X", "0"), 16), entry))
            else:
                self._exact[int(digits, 16)] = entry
        # Should two wildcard rows ever overlap, the one with more fixed digits is the closer match.
        self._patterns = tuple(sorted(patterns, key=lambda p: (-p[0].bit_count(), p[2].tag)))

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ProfileEntry]:
        return iter(self._entries)

    def entry_for(self, tag: int | BaseTag) -> ProfileEntry | None:
        tag = int(tag)
        if (entry := self._exact.get(tag)) is not None:
            return entry
        if (tag >> 16) % 2 == 1:
            return self._private
        return next((entry for mask, value, entry in self._patterns if tag & mask == value), None)

    def action_for(self, tag: int | BaseTag, options: Collection[str]) -> str | None:
        """The action code in force for `tag` with `options` (names from OPTION_COLUMNS) selected;
        None when Table E.1-1 does not list the attribute. The code may be combined (X/Z/D):
        resolve it with resolve_action."""
        selected = _validated_options(options)
        entry = self.entry_for(tag)
        return None if entry is None else entry.action(selected)


def _tag_digits(tag: str) -> str:
    if (match := _TAG_TEXT.fullmatch(tag)) is None:
        raise ValueError(f"unexpected tag form {tag!r}")
    return "".join(match.groups())


def _validated_options(options: Collection[str]) -> frozenset[str]:
    if isinstance(options, str):
        raise TypeError("options is a collection of option names, not a single name")
    selected = frozenset(options)
    if unknown := selected - OPTION_COLUMNS.keys():
        raise ValueError(
            f"unknown Annex E option(s) {sorted(unknown)}; known: {sorted(OPTION_COLUMNS)}")
    if _ALTERNATIVE_OPTIONS <= selected:
        raise ValueError(
            f"{' and '.join(sorted(_ALTERNATIVE_OPTIONS))} are alternatives: select one")
    return selected


def _data_file(name: str) -> Traversable:
    return resources.files("deid_pipeline.core.policy") / "data" / name


@cache
def load_profile() -> AnnexEProfile:
    """The packaged Table E.1-1, read once."""
    document = json.loads(_data_file(PROFILE_FILE).read_text(encoding="utf-8"))
    return AnnexEProfile(document["attributes"])


def resolve_action(code: str, attribute_type: str | None) -> str:
    """One of D, Z, X, K, C, U for an action code from Table E.1-1, given the attribute's type in
    the file's IOD ("1", "1C", "2", "2C", "3"; None when unknown).

    A combined code offers alternatives, of which the standard wants the least disclosing one the
    IOD allows: X for type 3, Z for type 2/2C, D for type 1/1C; U* ("X/Z/U*") offers U, new UIDs
    inside a sequence that must keep its items. Single codes are returned as they are."""
    if attribute_type is not None and attribute_type not in ATTRIBUTE_TYPES:
        raise ValueError(
            f"unknown attribute type {attribute_type!r}; known: {sorted(ATTRIBUTE_TYPES)}")
    offered = [part.rstrip("*") for part in code.split("/")]
    if not set(offered) <= ACTIONS:
        raise ValueError(f"unknown action code {code!r}")
    if len(offered) == 1:
        return offered[0]
    preference = (_CONFORMANT_WHATEVER_THE_TYPE if attribute_type is None
                  else _CONFORMANT_ACTIONS[attribute_type])
    for action in preference:
        if action in offered:
            return action
    raise ValueError(
        f"{code} offers no action that keeps a type {attribute_type} attribute conformant")


@cache
def _attribute_types() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    document = yaml.safe_load(_data_file(ATTRIBUTE_TYPES_FILE).read_text(encoding="utf-8"))
    iod_by_sop_class = {uid: iod for iod, uids in document["iods"].items() for uid in uids}
    return iod_by_sop_class, document["types"]


def attribute_type(keyword: str, sop_class_uid: str) -> str | None:
    """The type ("1", "1C", "2", "2C", "3") of a top-level attribute in the IOD of `sop_class_uid`,
    from data/attribute_types.yaml; None where that file does not say (another IOD, an attribute
    left out, or one nested in a sequence item, whose type depends on the sequence)."""
    iod_by_sop_class, types = _attribute_types()
    iod = iod_by_sop_class.get(sop_class_uid)
    types_by_iod = types.get(keyword)
    if iod is None or types_by_iod is None:
        return None
    return types_by_iod.get(iod, types_by_iod.get("all"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deid_pipeline.core.policy.annex_e",
        description=f"Regenerate data/{PROFILE_FILE} and data/{LICENSE_FILE} from the innolitics "
                    "extraction of PS3.15 Table E.1-1.")
    parser.add_argument("source_json", type=Path,
                        help=f"the source table; its licence, {LICENSE_FILE}, must sit beside it")
    args = parser.parse_args(argv)
    rows = json.loads(args.source_json.read_text(encoding="utf-8"))
    # Written into the source tree (this module's folder), not wherever resources resolve to.
    data_dir = Path(__file__).resolve().parent / "data"
    (data_dir / PROFILE_FILE).write_text(render_profile(build_profile(rows)), encoding="utf-8")
    shutil.copyfile(args.source_json.with_name(LICENSE_FILE), data_dir / LICENSE_FILE)
    print(f"wrote {len(rows)} attributes to {data_dir / PROFILE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
