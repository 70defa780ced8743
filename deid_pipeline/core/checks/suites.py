"""The data checks, one expectation suite each: what must hold of the incoming metadata, and of
the de-identified metadata compared with it.

A check that guards against PHI leaving (`guards_phi`) must stop the stages after it when it
fails; the others report conformance problems that leave nothing identifying behind.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from deid_pipeline.core.checks import frames
from deid_pipeline.core.checks.expectations import (
    Suite,
    at_least,
    in_set,
    lengths_between,
    matches,
    not_in_set,
    not_null,
    unique,
)
from deid_pipeline.core.policy.annex_e import load_profile
from deid_pipeline.core.policy.rules import Policy

# PS3.5 9.1: numeric components separated by dots, no leading zero; 64 characters at most.
UID_GRAMMAR = r"^(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+$"
UID_MAX_LENGTH = 64
# PS3.5 B.2: a UUID-derived UID, the form of every UID the pipeline generates.
GENERATED_UID = r"^2\.25\.(?:0|[1-9][0-9]*)$"
# The UIDs every file is filed under.
KEY_UIDS = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
# The rows of the incoming metadata table that each set of suites reads, as pyarrow filters (any
# of the inner lists, all of its conditions): a night's table read whole takes gigabytes.
INCOMING_SUITES_ROWS = [[("depth", "==", 0), ("keyword", "in", [*KEY_UIDS, "Modality"])]]
DEIDENTIFIED_SUITES_ROWS = [[("keyword", "in", sorted(frames.IDENTITY_KEYWORDS))],
                            [("vr", "in", sorted(frames.DATE_VRS | {"UI"}))]]
# Output files whose metadata the de-identified suites hold at once: a night of 10,000 small
# files checked whole peaked at 3.8 GB.
FILES_PER_BATCH = 1000


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    guards_phi: bool = False


INCOMING_CHECKS = (
    Check("files_identified", "Every incoming DICOM file has a SOP Instance, SOP Class, Study "
          "and Series Instance UID, and no SOP Instance UID occurs twice."),
    Check("modality_present", "Every incoming DICOM file names its modality."),
)
DEIDENTIFIED_CHECKS = (
    Check("no_original_patient_identity", "No de-identified file holds, as a whole value or a "
          "word of one, the Patient ID, other IDs or name of the file it came from (case, "
          "spacing and name-part order ignored), nor in its path. Names inside longer text are "
          "the leak gate's to find.", guards_phi=True),
    Check("uids_replaced", "Every UID that PS3.15 Annex E replaces (action U) is a generated "
          "2.25 UID that no incoming file held.", guards_phi=True),
    Check("dates_shifted", "No date or date-time element of a de-identified file holds its "
          "original value.", guards_phi=True),
    Check("no_unexpected_private_elements", "Private elements survive only in the blocks of "
          "private creators that a policy rule keeps.", guards_phi=True),
    Check("uids_well_formed", "Every UID follows the DICOM UID grammar and has at most 64 "
          "characters."),
    Check("type1_elements_filled", "Every de-identified file has its type 1 SOP, study, series "
          "and file meta elements, and no type 1 element it holds is empty."),
)


def incoming_suites(metadata: pd.DataFrame, files: Collection[str]) -> list[Suite]:
    """Over the dicom_metadata table of one partition (its INCOMING_SUITES_ROWS are enough) and
    the files it holds."""
    identified = frames.top_level_values(metadata, KEY_UIDS, files)
    modality = frames.top_level_values(metadata, ["Modality"], files)
    return [
        Suite("files_identified", identified,
              (*(not_null(keyword) for keyword in KEY_UIDS), unique("SOPInstanceUID"))),
        Suite("modality_present", modality, (not_null("Modality"),)),
    ]


def deidentified_suites(incoming: pd.DataFrame, output: pd.DataFrame,
                        outputs_of: Mapping[str, str], policy: Policy,
                        original_uids: Collection[str] | None = None) -> list[Suite]:
    """Over the metadata of the de-identified files (`output`) and of their inputs (`incoming`);
    `outputs_of` maps an input's relative path to its output's. No output may hold a UID of
    any input: `original_uids` are all of them where `incoming` holds only these inputs' rows
    (by default the UIDs in `incoming`)."""
    if original_uids is None:
        original_uids = frames.uid_values(incoming)["value"]
    uids = frames.uid_values(output)
    replaced = frames.replaced_uids(uids, load_profile(), policy.options)
    identity = frames.output_identity_keys(output)
    dated = frames.output_date_keys(output)
    return [
        Suite("no_original_patient_identity", identity,
              (not_in_set("identity_key", found(frames.original_identity_keys(incoming, outputs_of),
                                                identity["identity_key"])),)),
        waived(Suite("uids_replaced", replaced,
                     (matches("value", GENERATED_UID),
                      not_in_set("value", found(original_uids, replaced["value"])))),
               policy, "retain_uids"),
        waived(Suite("dates_shifted", dated,
                     (not_in_set("dated_element",
                                 found(frames.original_date_keys(incoming, outputs_of),
                                       dated["dated_element"])),)),
               policy, "retain_longitudinal_full_dates"),
        waived(Suite("no_unexpected_private_elements", frames.private_blocks(output),
                     (in_set("private_block", kept_private_creators(policy)),)),
               policy, "retain_safe_private"),
        Suite("uids_well_formed", uids,
              (matches("value", UID_GRAMMAR), lengths_between("value", 1, UID_MAX_LENGTH))),
        Suite("type1_elements_filled", frames.type1_lengths(output, set(outputs_of.values())),
              (not_null("length"), at_least("length", 1))),
    ]


def found(forbidden: Iterable[str], values: Iterable[str]) -> set[str]:
    """The forbidden values that occur: as a "not in set" value set, the same verdict as all of
    them, and great-expectations copies a value set many times per expectation (tens of seconds
    for a night's 90,000 original dates)."""
    return set(forbidden).intersection(values)


def deidentified_suite_batches(incoming: pd.DataFrame, outputs_of: Mapping[str, str],
                               read_outputs: Callable[[Sequence[str]], pd.DataFrame],
                               policy: Policy) -> Iterator[list[Suite]]:
    """deidentified_suites over FILES_PER_BATCH outputs at a time, each batch's metadata read
    with `read_outputs(output relpaths)` (for evaluate_batches: every expectation here judges rows
    one by one, so the batches add up to the whole); at least one batch, empty without outputs.
    `incoming` needs only its DEIDENTIFIED_SUITES_ROWS."""
    original_uids = set(frames.uid_values(incoming)["value"])
    pairs = list(outputs_of.items())
    for start in range(0, max(len(pairs), 1), FILES_PER_BATCH):
        batch = dict(pairs[start:start + FILES_PER_BATCH])
        yield deidentified_suites(incoming[incoming["file"].isin(batch)],
                                  read_outputs(list(batch.values())), batch, policy,
                                  original_uids)


def waived(suite: Suite, policy: Policy, option: str) -> Suite:
    """The suite without expectations when the policy selects `option`, which allows what the
    suite would find."""
    if option not in policy.options:
        return suite
    return Suite(suite.name, suite.frame, (), note=f"waived: the policy selects {option}")


def kept_private_creators(policy: Policy) -> frozenset[str]:
    """The private creators whose elements a policy rule keeps, in some form."""
    return frozenset(creator for rule in policy.element_rules() if rule.action != "delete"
                     for creator in rule.private_creators)
