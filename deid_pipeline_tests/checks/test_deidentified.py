"""The checks of the de-identified files run after deidentified_dicom, and those that guard
against PHI leaving stop the partition's later stages when they fail."""

from dagster import AssetCheckSeverity, materialize

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import deidentified_metadata, dicom_metadata
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.checks.deidentified import deidentified_dicom_checks
from deid_pipeline.core.checks.suites import DEIDENTIFIED_CHECKS
from deid_pipeline.core.deid import batch
from deid_pipeline.core.deid.identifiers import IdentifyingValues
from deid_pipeline.core.deid.leak_gate import LeakGate
from deid_pipeline.resources import DataLake, PseudonymKey
from deid_pipeline.site_policy import POLICY_ENV
from deid_pipeline_tests.dicom_factory import Patient, realistic_image, write

DAY = "2026-01-15"
ASSETS = [incoming_dicom, dicom_metadata, deidentified_dicom, deidentified_metadata,
          deidentified_dicom_checks]


def run_day(tmp_path):
    write(realistic_image(), tmp_path / "incoming" / DAY / "DOE" / "1.dcm")
    return materialize(ASSETS, partition_key=DAY, raise_on_error=False,
                       resources={"lake": DataLake(root=str(tmp_path)),
                                  "pseudonym_key": PseudonymKey()})


def test_every_check_passes_and_the_later_stages_run(tmp_path, deid_secret):
    result = run_day(tmp_path)

    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {check.name for check in DEIDENTIFIED_CHECKS} | {
        "files_deidentified", "nothing_quarantined"}  # the asset's own
    assert all(e.passed for e in evaluations.values())
    identity = evaluations["no_original_patient_identity"].metadata
    assert identity["expectations_failed"].value == 0 and identity["rows"].value > 0
    assert result.asset_materializations_for_node("deidentified_metadata")


class GateThatSeesNothing(LeakGate):
    """A leak gate told of no identifying value, which misses every leak: what the data checks
    are the second line against."""

    def __init__(self, original: IdentifyingValues) -> None:
        super().__init__(IdentifyingValues())


def test_a_surviving_patient_id_blocks_the_stages_after_deidentification(
        tmp_path, deid_secret, monkeypatch):
    keep_id = tmp_path / "keep_id.yaml"
    keep_id.write_text("rules:\n  - keyword: PatientID\n    action: keep\n")
    monkeypatch.setenv(POLICY_ENV, str(keep_id))  # a site policy that keeps the ID
    monkeypatch.setattr(batch, "LeakGate", GateThatSeesNothing)

    result = run_day(tmp_path)

    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    identity = evaluations["no_original_patient_identity"]
    assert not identity.passed and identity.severity == AssetCheckSeverity.ERROR
    assert identity.metadata["unexpected_rows"].value > 0
    assert evaluations["uids_replaced"].passed
    # Downstream of deidentified_dicom: not made from an output that leaks.
    assert not result.asset_materializations_for_node("deidentified_metadata")
    told = repr([e.metadata for e in evaluations.values()])
    assert Patient().patient_id not in told and "DOE" not in told
