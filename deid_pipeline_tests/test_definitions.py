import subprocess
import sys
from pathlib import Path

import duckdb
from dagster import materialize

from deid_pipeline.definitions import all_assets, defs
from deid_pipeline.resources import DataLake, PseudonymKey
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-01-15"


def test_workspace_definitions_validate():
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful" in done.stderr + done.stdout


def test_every_asset_is_described_grouped_and_owned():
    for spec in defs.resolve_all_asset_specs():
        assert spec.description and spec.group_name != "default" and spec.owners, spec.key


def test_ingest_and_metadata_materialize_one_partition_readable_by_duckdb(tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", "test-secret")
    incoming = tmp_path / "incoming" / DAY
    write(ct_with_nested_and_private(), incoming / "DOE_JANE" / "1.dcm")
    (incoming / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 7)
    lake = DataLake(root=str(tmp_path))

    result = materialize(all_assets, partition_key=DAY,
                         resources={"lake": lake, "pseudonym_key": PseudonymKey()})

    assert result.success
    ingest_meta = result.asset_materializations_for_node("incoming_dicom")[0].metadata
    assert ingest_meta["files"].value == 2 and ingest_meta["unreadable"].value == 1
    table = lake.table_path("dicom_metadata", DAY)
    nested = duckdb.sql(
        f"select value, depth from read_parquet('{table}') where keyword = 'CodeValue'").fetchall()
    assert nested == [("CTCHEST", 2)]
    creators = duckdb.sql(
        f"select distinct private_creator from read_parquet('{table}') "
        "where private_creator is not null").fetchall()
    assert creators == [("ACME_PATIENT_01",)]


def test_missing_drop_folder_fails_the_partition_with_a_clear_reason(tmp_path):
    result = materialize(all_assets, partition_key=DAY, raise_on_error=False,
                         resources={"lake": DataLake(root=str(tmp_path)),
                                    "pseudonym_key": PseudonymKey()})
    assert not result.success
    failure = result.failure_data_for_node("incoming_dicom")
    assert "no drop folder for 2026-01-15" in failure.error.message


def test_transcoded_dicom_archives_the_partition_in_one_syntax(tmp_path, deid_secret):
    import numpy as np
    import pydicom

    incoming = tmp_path / "incoming" / DAY
    source = ct_with_nested_and_private()
    source.Rows = source.Columns = 64  # JPEG 2000 wants 32 pixels a side at least
    source.PixelData = (np.arange(64 * 64, dtype="<u2") % 4096).tobytes()
    write(source, incoming / "DOE_JANE" / "1.dcm")
    lake = DataLake(root=str(tmp_path))

    result = materialize(all_assets, partition_key=DAY,
                         resources={"lake": lake, "pseudonym_key": PseudonymKey()})

    assert result.success
    meta = result.asset_materializations_for_node("transcoded_dicom")[0].metadata
    assert meta["transcoded"].value == 1 and meta["quarantined"].value == 0
    (output,) = (tmp_path / "transcoded" / DAY).rglob("*.dcm")
    ds = pydicom.dcmread(output)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert (ds.pixel_array == source.pixel_array).all()


def test_a_tag_rerun_clears_its_own_work_but_not_the_slide_branchs(tmp_path, deid_secret):
    from deid_pipeline.assets.ingest import incoming_dicom
    from deid_pipeline.assets.metadata import dicom_metadata
    from deid_pipeline.assets.tags import deidentified_dicom

    write(ct_with_nested_and_private(), tmp_path / "incoming" / DAY / "1.dcm")
    lake = DataLake(root=str(tmp_path))
    slide_mapping = lake.work(DAY) / "slides" / "patid_mapping.csv"
    stale = lake.work(DAY) / "quarantine" / "stale.reason.txt"
    for path in (slide_mapping, stale):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("from an earlier run")

    result = materialize([incoming_dicom, dicom_metadata, deidentified_dicom], partition_key=DAY,
                         resources={"lake": lake, "pseudonym_key": PseudonymKey()})

    assert result.success
    assert slide_mapping.read_text() == "from an earlier run"
    assert not stale.exists()
    assert (lake.work(DAY) / "uid_mapping.csv").exists()
