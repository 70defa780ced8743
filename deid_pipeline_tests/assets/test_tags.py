from dagster import materialize

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import deidentified_metadata, dicom_metadata
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.resources import DataLake, PseudonymKey
from deid_pipeline_tests.dicom_factory import realistic_image, write

DAY = "2026-01-16"
ASSETS = [incoming_dicom, dicom_metadata, deidentified_dicom, deidentified_metadata]


def run(tmp_path):
    lake = DataLake(root=str(tmp_path))
    return materialize(ASSETS, partition_key=DAY, raise_on_error=False,
                       resources={"lake": lake, "pseudonym_key": PseudonymKey()})


def checks_of(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()
            if e.asset_key == deidentified_dicom.key}


def test_a_good_day_passes_its_checks_and_counts_the_actions_applied(tmp_path, deid_secret):
    write(realistic_image(), tmp_path / "incoming" / DAY / "a.dcm")

    result = run(tmp_path)

    assert result.success
    assert checks_of(result) == {"files_deidentified": True, "nothing_quarantined": True}
    actions = result.asset_materializations_for_node("deidentified_dicom")[0].metadata["actions"]
    assert "| delete |" in actions.value and "| clean |" in actions.value


def test_a_day_whose_every_file_went_to_quarantine_stops_before_publishing(
        tmp_path, deid_secret):
    ds = realistic_image()
    del ds.SOPInstanceUID  # cannot be de-identified: quarantined
    write(ds, tmp_path / "incoming" / DAY / "a.dcm")

    result = run(tmp_path)

    assert checks_of(result) == {"files_deidentified": False, "nothing_quarantined": False}
    assert not result.asset_materializations_for_node("deidentified_metadata")
