"""The data checks, one expectation suite each: what must hold of the incoming metadata, and of
the de-identified metadata compared with it.

A check that guards against PHI leaving (`guards_phi`) must stop the stages after it when it
fails; the others report conformance problems that leave nothing identifying behind.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def incoming_suites(metadata: pd.DataFrame) -> list[Suite]:
    """Over the dicom_metadata table of one partition."""
    identified = frames.top_level_values(metadata, KEY_UIDS)
    modality = frames.top_level_values(metadata, ["Modality"])
    return [
        Suite("files_identified", identified,
              (*(not_null(keyword) for keyword in KEY_UIDS), unique("SOPInstanceUID"))),
        Suite("modality_present", modality, (not_null("Modality"),)),
    ]


def deidentified_suites(incoming: pd.DataFrame, output: pd.DataFrame,
                        outputs_of: Mapping[str, str], policy: Policy) -> list[Suite]:
    """Over the metadata of the de-identified files (`output`) and of their inputs (`incoming`);
    `outputs_of` maps an input's relative path to its output's."""
    uids = frames.uid_values(output)
    replaced = frames.replaced_uids(uids, load_profile(), policy.options)
    original_uids = set(frames.uid_values(incoming)["value"])
    return [
        Suite("no_original_patient_identity", frames.output_identity_keys(output),
              (not_in_set("identity_key", frames.original_identity_keys(incoming, outputs_of)),)),
        waived(Suite("uids_replaced", replaced,
                     (matches("value", GENERATED_UID), not_in_set("value", original_uids))),
               policy, "retain_uids"),
        waived(Suite("dates_shifted", frames.output_date_keys(output),
                     (not_in_set("dated_element",
                                 frames.original_date_keys(incoming, outputs_of)),)),
               policy, "retain_longitudinal_full_dates"),
        waived(Suite("no_unexpected_private_elements", frames.private_blocks(output),
                     (in_set("private_block", kept_private_creators(policy)),)),
               policy, "retain_safe_private"),
        Suite("uids_well_formed", uids,
              (matches("value", UID_GRAMMAR), lengths_between("value", 1, UID_MAX_LENGTH))),
        Suite("type1_elements_filled", frames.type1_lengths(output, set(outputs_of.values())),
              (not_null("length"), at_least("length", 1))),
    ]


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
