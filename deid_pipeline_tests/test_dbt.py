"""The dbt project builds over the pipeline's tables, and its tests pass."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from deid_pipeline.core.deid.batch import FINDING_COLUMNS
from deid_pipeline.core.ingest import build_manifest
from deid_pipeline.resources import DataLake
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

ROOT = Path(__file__).resolve().parents[1]


def test_dbt_build_over_one_partition(tmp_path):
    write(ct_with_nested_and_private(), tmp_path / "drop" / "1.dcm")
    lake = DataLake(root=str(tmp_path / "data"))
    lake.write_table("incoming_dicom", "2026-01-15", build_manifest(tmp_path / "drop"))
    lake.write_table("pixel_phi_findings", "2026-01-15", pd.DataFrame(columns=FINDING_COLUMNS))
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run(
        [str(dbt), "build", "--profiles-dir", ".", "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        cwd=ROOT / "dbt", capture_output=True, text=True, timeout=300,
        env={**os.environ, "DEID_DATA_ROOT": str(tmp_path / "data"),
             "DEID_DBT_DATABASE": str(tmp_path / "dbt.duckdb")})
    assert done.returncode == 0, done.stdout[-3000:]
    assert "PASS=6" in done.stdout
