import pandas as pd
from dagster import materialize

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import deidentified_metadata, dicom_metadata
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.core.deid.batch import WorkPaths
from deid_pipeline.resources import DataLake, PseudonymKey
from deid_pipeline_tests.dicom_factory import Patient, realistic_image, write

DAY = "2026-01-15"


def test_deidentified_metadata_flattens_the_output_under_its_pseudonymous_paths(
        tmp_path, deid_secret):
    write(realistic_image(), tmp_path / "incoming" / DAY / "DOE" / "1.dcm")
    lake = DataLake(root=str(tmp_path))

    result = materialize([incoming_dicom, dicom_metadata, deidentified_dicom,
                          deidentified_metadata], partition_key=DAY,
                         resources={"lake": lake, "pseudonym_key": PseudonymKey()})

    assert result.success
    (output,) = pd.read_parquet(WorkPaths(lake.work(DAY)).files)["output"]
    table = lake.read_table("deidentified_metadata", DAY)
    assert set(table["file"]) == {output}
    incoming = lake.read_table("dicom_metadata", DAY)
    assert list(table.columns) == list(incoming.columns)
    assert Patient().patient_id not in set(table["value"].dropna())
    meta = result.asset_materializations_for_node("deidentified_metadata")[0].metadata
    assert meta["files"].value == 1 and meta["unparsable_files"].value == 0
