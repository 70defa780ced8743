"""The suites over a file really de-identified, and over outputs that leak."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pydicom
import pytest
from pyarrow.parquet import filters_to_expression

from deid_pipeline.core.checks import suites as suites_module
from deid_pipeline.core.checks.expectations import evaluate, evaluate_batches
from deid_pipeline.core.checks.suites import (
    DEIDENTIFIED_CHECKS,
    DEIDENTIFIED_SUITES_ROWS,
    INCOMING_CHECKS,
    INCOMING_SUITES_ROWS,
    deidentified_suite_batches,
    deidentified_suites,
    incoming_suites,
)
from deid_pipeline.core.deid.batch import deidentify_tree
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.metadata import metadata_frame
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline.core.tree_metadata import tree_metadata
from deid_pipeline_tests.dicom_factory import (
    Patient,
    realistic_image,
    write,
    write_two_patient_tree,
)

PHI_CHECKS = {check.name for check in DEIDENTIFIED_CHECKS if check.guards_phi}


@pytest.fixture(scope="module")
def deidentified(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """(output tree, incoming metadata, output metadata, input -> output) of one image."""
    root = tmp_path_factory.mktemp("suites")
    write(realistic_image(), root / "in" / "DOE" / "1.dcm")
    engine = TagEngine(load_policy(), Pseudonymizer(b"suites test secret"))
    deidentify_tree(root / "in", root / "out", root / "work", engine)
    files = pd.read_parquet(root / "work" / "files.parquet")
    outputs_of = dict(zip(files["source"], files["output"], strict=True))
    return (root / "out", tree_metadata(root / "in", ["DOE/1.dcm"]).frame,
            tree_metadata(root / "out", files["output"]).frame, outputs_of)


def outcomes_of(suites) -> dict:
    return {outcome.name: outcome for outcome in evaluate(suites)}


def test_every_check_passes_on_a_file_the_pipeline_deidentified(deidentified):
    _, incoming, output, outputs_of = deidentified
    outcomes = outcomes_of(incoming_suites(incoming, incoming["file"].unique())
                           + deidentified_suites(incoming, output, outputs_of, load_policy()))
    assert set(outcomes) == {check.name for check in INCOMING_CHECKS + DEIDENTIFIED_CHECKS}
    assert {name: outcome.failed for name, outcome in outcomes.items() if outcome.failed} == {}
    assert all(outcome.passed for outcome in outcomes.values())


def test_the_phi_checks_fail_on_an_untouched_copy_and_say_no_value(deidentified):
    _, incoming, _, _ = deidentified
    copy = incoming.assign(file="copy.dcm")
    outcomes = outcomes_of(deidentified_suites(incoming, copy, {"DOE/1.dcm": "copy.dcm"},
                                               load_policy()))
    assert {name for name, outcome in outcomes.items() if not outcome.success} == PHI_CHECKS
    assert all(outcome.unexpected_rows > 0 for outcome in outcomes.values()
               if not outcome.success)
    patient = Patient()
    told = repr(outcomes)
    assert patient.patient_id not in told and "DOE" not in told and "20120103" not in told


def test_a_name_written_back_in_another_spelling_fails_the_identity_check(deidentified, tmp_path):
    out, incoming, _, outputs_of = deidentified
    (relpath,) = outputs_of.values()
    ds = pydicom.dcmread(out / relpath)
    ds.ImageComments = "Doe, Marie Jane"  # the patient's name, parts reordered
    write(ds, tmp_path / relpath)
    output = tree_metadata(tmp_path, [relpath]).frame
    outcomes = outcomes_of(deidentified_suites(incoming, output, outputs_of, load_policy()))
    assert not outcomes["no_original_patient_identity"].success
    assert all(outcome.success for name, outcome in outcomes.items()
               if name != "no_original_patient_identity")


def test_a_malformed_uid_and_an_emptied_type1_element_fail_only_conformance(deidentified,
                                                                          tmp_path):
    out, incoming, _, outputs_of = deidentified
    (relpath,) = outputs_of.values()
    ds = pydicom.dcmread(out / relpath)
    ds.Modality = ""
    with pytest.warns(UserWarning, match="Invalid value for VR UI"):
        ds.file_meta.ImplementationClassUID = "1.2.03"  # a leading zero
        write(ds, tmp_path / relpath)
        output = tree_metadata(tmp_path, [relpath]).frame
    outcomes = outcomes_of(deidentified_suites(incoming, output, outputs_of, load_policy()))
    failed = {name: outcome.unexpected_rows for name, outcome in outcomes.items()
              if not outcome.success}
    assert failed == {"uids_well_formed": 1, "type1_elements_filled": 1}


def test_options_that_allow_what_a_suite_finds_waive_it(deidentified, tmp_path):
    _, incoming, output, outputs_of = deidentified
    policy_file = tmp_path / "retain.yaml"
    policy_file.write_text("profile:\n  options: [retain_uids, retain_longitudinal_full_dates,"
                           " retain_safe_private]\n")
    suites = {suite.name: suite for suite in deidentified_suites(
        incoming, output, outputs_of, load_policy([policy_file]))}
    waived = {name for name, suite in suites.items() if not suite.expectations}
    assert waived == {"uids_replaced", "dates_shifted", "no_unexpected_private_elements"}
    assert suites["uids_replaced"].note == "waived: the policy selects retain_uids"


def test_suites_build_over_a_partition_without_dicom_files():
    empty = metadata_frame([])
    suites = incoming_suites(empty, []) + deidentified_suites(empty, empty, {}, load_policy())
    assert {suite.name for suite in suites} == {
        check.name for check in INCOMING_CHECKS + DEIDENTIFIED_CHECKS}
    assert all(suite.frame.empty and len(suite.frame.columns) for suite in suites)


def rows_of(metadata: pd.DataFrame, filters: list[list[tuple]]) -> pd.DataFrame:
    """The rows of a metadata table that pass pyarrow filters, as the checks read them."""
    table = pa.Table.from_pandas(metadata, preserve_index=False)
    return table.filter(filters_to_expression(filters)).to_pandas()


def test_batches_of_outputs_add_up_to_the_whole_and_a_leak_in_one_fails_it(tmp_path,
                                                                            monkeypatch):
    write_two_patient_tree(tmp_path / "in")
    engine = TagEngine(load_policy(), Pseudonymizer(b"suites test secret"))
    deidentify_tree(tmp_path / "in", tmp_path / "out", tmp_path / "work", engine)
    files = pd.read_parquet(tmp_path / "work" / "files.parquet")
    outputs_of = dict(zip(files["source"], files["output"], strict=True))
    incoming = tree_metadata(tmp_path / "in", list(outputs_of)).frame
    leaked = files["output"].iloc[-1]  # in the last batch
    ds = pydicom.dcmread(tmp_path / "out" / leaked)
    ds.ImageComments = incoming.loc[incoming["keyword"] == "PatientID", "value"].iloc[-1]
    write(ds, tmp_path / "out" / leaked)

    def read_outputs(relpaths):
        read.append(len(relpaths))
        return tree_metadata(tmp_path / "out", relpaths).frame

    read: list[int] = []
    monkeypatch.setattr(suites_module, "FILES_PER_BATCH", 3)
    batched = evaluate_batches(deidentified_suite_batches(
        rows_of(incoming, DEIDENTIFIED_SUITES_ROWS), outputs_of, read_outputs, load_policy()))
    whole = evaluate(deidentified_suites(
        incoming, tree_metadata(tmp_path / "out", list(outputs_of.values())).frame, outputs_of,
        load_policy()))

    assert len(outputs_of) == 4 and read == [3, 1]
    assert batched == whole
    assert [o.name for o in batched if not o.success] == ["no_original_patient_identity"]
    assert batched[0].unexpected_rows >= 1


def test_the_incoming_suites_need_only_their_rows_and_the_file_list(deidentified):
    _, incoming, _, _ = deidentified
    files = ["DOE/1.dcm", "empty.dcm"]  # a file without a row of the keys: every key missing
    outcomes = outcomes_of(incoming_suites(rows_of(incoming, INCOMING_SUITES_ROWS), files))
    whole = outcomes_of(incoming_suites(incoming, files))
    assert outcomes == whole
    assert outcomes["modality_present"].unexpected_rows == 1
    assert outcomes["files_identified"].rows == 2 and not outcomes["files_identified"].success
