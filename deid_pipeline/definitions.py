"""The Dagster code location loaded by `workspace.yaml`."""

from dagster import Definitions

from deid_pipeline.assets.dbt_marts import dbt_marts, dbt_resource
from deid_pipeline.assets.ingest import incoming_dicom
from deid_pipeline.assets.metadata import deidentified_metadata, dicom_metadata
from deid_pipeline.assets.pixels import encoded_dicom, pixel_phi_findings, redacted_dicom
from deid_pipeline.assets.reports import midib_validation_report, pixel_phi_metrics
from deid_pipeline.assets.slides import deidentified_slides
from deid_pipeline.assets.tags import deidentified_dicom
from deid_pipeline.assets.transcode import transcoded_dicom
from deid_pipeline.checks.deidentified import deidentified_dicom_checks
from deid_pipeline.checks.incoming import incoming_metadata_checks
from deid_pipeline.executors import executor_from_environment
from deid_pipeline.jobs import deidentify_day
from deid_pipeline.resources import PseudonymKey, lake_from_environment
from deid_pipeline.schedules import nightly_deidentify
from deid_pipeline.sensors import new_drop_sensor

all_assets = [incoming_dicom, dicom_metadata, deidentified_dicom, pixel_phi_findings,
              redacted_dicom, encoded_dicom, transcoded_dicom, deidentified_slides,
              midib_validation_report, pixel_phi_metrics, deidentified_metadata]

defs = Definitions(
    assets=[*all_assets, dbt_marts],
    asset_checks=[incoming_metadata_checks, deidentified_dicom_checks],
    resources={"lake": lake_from_environment(), "pseudonym_key": PseudonymKey(),
               "dbt": dbt_resource()},
    jobs=[deidentify_day],
    schedules=[nightly_deidentify],
    sensors=[new_drop_sensor],
    executor=executor_from_environment(),
)
