"""The Dagster code location loaded by `workspace.yaml`."""

from dagster import Definitions

from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import dicom_metadata
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.assets.transcode import transcoded_dicom
from deid_pipeline.resources import DataLake, PseudonymKey, default_data_root

all_assets = [incoming_dicom, dicom_metadata, deidentified_dicom, transcoded_dicom]

defs = Definitions(
    assets=all_assets,
    resources={"lake": DataLake(root=default_data_root()), "pseudonym_key": PseudonymKey()},
)
