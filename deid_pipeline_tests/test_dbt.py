"""The dbt project builds over the pipeline's tables, alone (`dbt build`), and its tests pass;
tables that no stage has written yet read as empty."""

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from deid_pipeline.core.deid.batch import FINDING_COLUMNS, WorkPaths
from deid_pipeline.core.ingest import build_manifest
from deid_pipeline.core.tree_metadata import tree_metadata
from deid_pipeline.core.validate.midib import results_frame
from deid_pipeline.resources import DataLake
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-01-15"
OUTPUT = "P1/2.25.1/2.25.2/2.25.3.dcm"


def finding(is_phi: bool, reason: str) -> dict:
    return {"file": OUTPUT, "frames": "0", "x1": 0, "y1": 0, "x2": 4, "y2": 2,
            "is_phi": is_phi, "reason": reason, "text_score": 0.9}


def midib_result(action: str, passed: bool) -> dict:
    return {"check_passed": passed, "check_score": float(passed), "action": action,
            "action_text": "", "file_value": "DOE^JANE", "answer_value": "DOE^JANE",
            "tag": "(0010,0010)", "tag_ds": "<(0010,0010)>", "tag_name": "PatientName",
            "modality": "CT", "class": "1.2.840.10008.5.1.4.1.1.2", "patient": "MRN12345",
            "study": "1.2.3.4.5.6.7.2", "series": "1.2.3.4.5.6.7.3", "instance": "1.2.3.4.5.6.7.1"}


def write_day_tables(lake: DataLake, drop: Path, day: str = DAY) -> None:
    """Every table the dbt sources read, for one day with one file: the file stands for its own
    de-identified output (dbt compares counts, not values)."""
    write(ct_with_nested_and_private(), drop / "DOE_JANE" / "1.dcm")
    lake.write_table("incoming_dicom", day, build_manifest(drop))
    lake.write_table("dicom_metadata", day, tree_metadata(drop, ["DOE_JANE/1.dcm"]).frame)
    write(ct_with_nested_and_private(), drop.parent / "out" / OUTPUT)
    deidentified = tree_metadata(drop.parent / "out", [OUTPUT]).frame
    lake.write_table("deidentified_metadata", day, deidentified)
    audit = deidentified[["file", "path", "tag", "keyword"]].assign(action="keep", rule="safe")
    audit_path = WorkPaths(lake.work(day)).audit
    audit_path.parent.mkdir(parents=True)
    audit.to_parquet(audit_path, index=False)
    lake.publish(audit_path)
    lake.write_table("pixel_phi_findings", day, pd.DataFrame(
        [finding(True, "patient name"), finding(True, "patient name"), finding(False, "safe")],
        columns=FINDING_COLUMNS))
    lake.write_table("midib_results", day, results_frame(
        [midib_result("<text_removed>", True), midib_result("<text_removed>", False),
         midib_result("<uid_changed>", True)]))


def dbt_build(tmp_path: Path, data_root: Path) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    return subprocess.run(
        [str(dbt), "build", "--profiles-dir", ".", "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        cwd=ROOT / "dbt", capture_output=True, text=True, timeout=300,
        env={**os.environ, "DEID_DATA_ROOT": str(data_root),
             "DEID_DBT_DATABASE": str(tmp_path / "dbt.duckdb")})


def assert_everything_passed(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout[-3000:]
    passed, total = re.search(r"PASS=(\d+) .* TOTAL=(\d+)", done.stdout).groups()
    assert int(passed) == int(total) > 0, done.stdout[-3000:]


def test_dbt_build_over_one_partition(tmp_path):
    lake = DataLake(root=str(tmp_path / "data"))
    write_day_tables(lake, tmp_path / "drop")

    done = dbt_build(tmp_path, tmp_path / "data")

    assert_everything_passed(done)
    with duckdb.connect(str(tmp_path / "dbt.duckdb"), read_only=True) as db:
        summary = db.sql("select * from mart_partition_summary").df().iloc[0]
        assert summary["ingest_day"] == DAY
        assert (summary["files_dropped"], summary["files_deidentified"]) == (1, 1)
        assert (summary["phi_boxes"], summary["files_with_phi_boxes"]) == (2, 1)
        assert (summary["validation_checks"], summary["validation_failures"]) == (3, 1)
        assert summary["elements_audited"] == summary["elements_deidentified"] > 0
        rates = db.sql("select check_name, modality, pass_rate from mart_check_pass_rate "
                       "order by check_name").fetchall()
        assert rates == [("text_removed", "CT", 0.5), ("uid_changed", "CT", 1.0)]
        findings = db.sql("select modality, reason, phi_boxes, files from mart_phi_findings")
        assert findings.fetchall() == [("CT", "patient name", 2, 1)]
        # The marts are tables: copies that must hold no original value.
        marts = [name for (name,) in db.sql(
            "select table_name from information_schema.tables where table_name like 'mart_%'"
            " and table_type = 'BASE TABLE'").fetchall()]
        assert len(marts) == 4
        for mart in marts:
            text = db.sql(f"select * from {mart}").df().to_csv()
            assert "DOE" not in text and "MRN12345" not in text and "1.2.3.4.5.6.7" not in text


def test_dbt_build_while_the_optional_stages_have_written_nothing(tmp_path):
    write(ct_with_nested_and_private(), tmp_path / "drop" / "1.dcm")
    lake = DataLake(root=str(tmp_path / "data"))
    lake.write_table("incoming_dicom", DAY, build_manifest(tmp_path / "drop"))

    done = dbt_build(tmp_path, tmp_path / "data")

    assert_everything_passed(done)
    with duckdb.connect(str(tmp_path / "dbt.duckdb"), read_only=True) as db:
        summary = db.sql("select files_dropped, files_deidentified, files_not_deidentified, "
                         "validation_pass_rate from mart_partition_summary").fetchall()
        assert summary == [(1, 0, 1, None)]
        assert db.execute("select count(*) from mart_check_pass_rate").fetchone() == (0,)
        assert db.execute("select count(*) from stg_deid_audit").fetchone() == (0,)
