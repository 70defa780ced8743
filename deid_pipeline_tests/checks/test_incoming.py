"""The checks of the incoming metadata warn without stopping the partition."""

from dagster import AssetCheckSeverity, materialize

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import dicom_metadata
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.checks.incoming import incoming_metadata_checks
from deid_pipeline.resources import DataLake, PseudonymKey
from deid_pipeline_tests.dicom_factory import realistic_image, write

DAY = "2026-01-15"


def test_a_file_without_modality_warns_and_the_partition_goes_on(tmp_path, deid_secret):
    incoming = tmp_path / "incoming" / DAY
    write(realistic_image(), incoming / "1.dcm")
    no_modality = realistic_image(sop_uid="1.2.826.0.1.3680043.9.7777.3.2")
    del no_modality.Modality
    write(no_modality, incoming / "2.dcm")

    result = materialize(
        [incoming_dicom, dicom_metadata, incoming_metadata_checks, deidentified_dicom],
        partition_key=DAY, resources={"lake": DataLake(root=str(tmp_path)),
                                      "pseudonym_key": PseudonymKey()})

    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["files_identified"].passed
    modality = evaluations["modality_present"]
    assert not modality.passed and modality.severity == AssetCheckSeverity.WARN
    assert modality.metadata["unexpected_rows"].value == 1
    assert modality.metadata["failed_expectations"].value == [
        "expect_column_values_to_not_be_null(Modality)"]
    assert result.asset_materializations_for_node("deidentified_dicom")
