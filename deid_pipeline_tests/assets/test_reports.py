"""The report assets materialized on a one-patient synthetic drop whose tags were de-identified
(no OCR: the upstream pixel stage is stood in for by tables written here)."""

import io
import sqlite3
from contextlib import closing
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from dagster import AssetMaterialization, DagsterInstance, materialize
from PIL import Image

from deid_pipeline.assets.pixels import pixel_phi_findings
from deid_pipeline.assets.reports import midib_validation_report, pixel_phi_metrics
from deid_pipeline.core.deid.batch import FINDING_COLUMNS, WorkPaths, deidentify_tree
from deid_pipeline.core.deid.engine import TagEngine
from deid_pipeline.core.discovery import FileKind
from deid_pipeline.core.policy.rules import load_policy
from deid_pipeline.core.pseudonyms import Pseudonymizer
from deid_pipeline.core.synth import generate_corpus
from deid_pipeline.core.validate.midib import RESULT_COLUMNS
from deid_pipeline.core.validate.pixel_metrics import load_truth
from deid_pipeline.core.validate.pixel_table import METRIC_COLUMNS, REDACT_PHI
from deid_pipeline.core.validate.results_db import RESULTS_TABLE
from deid_pipeline.resources import DataLake
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

DAY = "2026-01-15"


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    """A lake whose drop holds a synthetic corpus (answer key and sidecars included) and whose
    final output (`encoded/<day>`) is that drop with its tags de-identified."""
    lake = DataLake(root=str(tmp_path_factory.mktemp("lake")))
    corpus = generate_corpus(lake.incoming(DAY), patients=1, seed=0)
    policy = load_policy()
    pseudonymizer = Pseudonymizer.from_environment(
        {"DEID_SECRET": "test-secret"}, min_shift_days=policy.shift_min_days,
        max_shift_days=policy.shift_max_days)
    deidentify_tree(lake.incoming(DAY), lake.root_path / "encoded" / DAY, lake.work(DAY),
                    TagEngine(policy, pseudonymizer), kinds={FileKind.DICOM})
    return lake, corpus


def metadata_text(result, node) -> str:
    return " ".join(str(v.value) for v in
                    result.asset_materializations_for_node(node)[0].metadata.values())


def original_identifiers(lake) -> set[str]:
    with closing(sqlite3.connect(lake.incoming(DAY) / "answer_key.db")) as db:
        rows = db.execute("SELECT PatientID, StudyInstanceUID FROM answer_data").fetchall()
    return {value for row in rows for value in row}


def test_midib_report_scores_the_final_output_into_table_database_and_workbook(drop):
    lake, corpus = drop

    result = materialize([midib_validation_report], partition_key=DAY, resources={"lake": lake},
                         run_config={"ops": {"midib_validation_report": {
                             "config": {"read_pixels": False}}}})

    assert result.success
    meta = result.asset_materializations_for_node("midib_validation_report")[0].metadata
    expected = sum(corpus.checks.values()) - corpus.checks["pixels_hidden"]
    assert meta["checks"].value == expected
    results = pd.read_parquet(lake.table_path("midib_results", DAY))
    assert list(results.columns) == list(RESULT_COLUMNS) and len(results) == expected
    # The mapping files of the work folder were used: every UID maps as written.
    consistent = results[results["action"] == "<uid_consistent>"]
    assert len(consistent) and consistent["check_passed"].all()
    assert meta["failed"].value == int((~results["check_passed"]).sum())
    assert meta["score"].value == round(results["check_passed"].mean(), 6)
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("all_midib_checks_passed",
                                                meta["failed"].value == 0)
    assert "| uid_consistent | 1.0 |" in meta["scores"].value
    assert "pixels_hidden" not in meta["scores"].value
    with closing(sqlite3.connect(meta["database"].value)) as db:
        assert db.execute(f"SELECT count(*) FROM {RESULTS_TABLE}").fetchone() == (expected,)
    book = openpyxl.load_workbook(meta["workbook"].value, read_only=True)
    assert book.sheetnames[:3] == ["Scoring", "Actions", "Categories"]
    # Results quote original values: they stay in the work folder, never in metadata.
    assert meta["database"].value.startswith(str(lake.work(DAY)))
    assert Path(meta["database"].value).parent.stat().st_mode & 0o777 == 0o700
    text = metadata_text(result, "midib_validation_report")
    assert not [value for value in original_identifiers(lake) if value in text]


def test_midib_report_without_an_answer_key_says_so_and_writes_no_checks(drop):
    lake, _ = drop

    result = materialize([midib_validation_report], partition_key=DAY, resources={"lake": lake},
                         run_config={"ops": {"midib_validation_report": {
                             "config": {"answer_key": "elsewhere/key.db"}}}})

    assert result.success
    meta = result.asset_materializations_for_node("midib_validation_report")[0].metadata
    assert meta["checks"].value == 0
    assert "no answer key: elsewhere/key.db" in meta["reason"].value
    results = pd.read_parquet(lake.table_path("midib_results", DAY))
    assert results.empty and list(results.columns) == list(RESULT_COLUMNS)


def truth_findings(lake, drop_phi_of: str) -> pd.DataFrame:
    """Findings that read every true word with its true verdict, but for the PHI of one output
    file, judged not PHI."""
    files = pd.read_parquet(WorkPaths(lake.work(DAY)).files)
    rows = []
    for source, output in files[["source", "output"]].itertuples(index=False):
        for word in load_truth((lake.incoming(DAY) / source).with_suffix(".json")):
            x1, y1, x2, y2 = word.box
            rows.append({"file": output, "frames": "0", "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                         "is_phi": word.is_phi and output != drop_phi_of, "reason": "test",
                         "text_score": 1.0})
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def test_pixel_metrics_score_the_findings_against_the_sidecars(drop):
    lake, _ = drop
    files = pd.read_parquet(WorkPaths(lake.work(DAY)).files)
    phi_per_file = {output: sum(w.is_phi for w in load_truth(
        (lake.incoming(DAY) / source).with_suffix(".json")))
        for source, output in files[["source", "output"]].itertuples(index=False)}
    missed = max(phi_per_file, key=phi_per_file.get)
    lake.write_table("pixel_phi_findings", DAY, truth_findings(lake, drop_phi_of=missed))

    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(AssetMaterialization(
            asset_key=pixel_phi_findings.key, partition=DAY,
            metadata={"seconds_per_file": 0.5, "device": "cpu"}))
        result = materialize([pixel_phi_metrics], partition_key=DAY, instance=instance,
                             resources={"lake": lake})

    assert result.success
    meta = result.asset_materializations_for_node("pixel_phi_metrics")[0].metadata
    total = sum(phi_per_file.values())
    assert meta["images"].value == len(files) and meta["phi_words"].value == total
    assert meta["recall"].value == round((total - phi_per_file[missed]) / total, 4)
    assert meta["precision"].value == 1.0 and meta["device"].value == "cpu"
    metrics = pd.read_parquet(lake.table_path("pixel_phi_metrics", DAY))
    assert list(metrics.columns) == METRIC_COLUMNS
    assert set(metrics["setting"]) == {REDACT_PHI, "redact all text"}
    everything = metrics[metrics["modality"] == "all"]
    assert everything["seconds_per_image"].tolist() == [0.5, 0.5]
    assert "| redact all text | all |" in meta["metrics"].value
    assert "data:image/png;base64," in meta["recall_chart"].value
    chart = Image.open(io.BytesIO(open(meta["chart"].value, "rb").read()))
    assert chart.format == "PNG"
    book = openpyxl.load_workbook(meta["workbook"].value, read_only=True)
    assert len(list(book.active.iter_rows())) == len(metrics) + 1


def test_pixel_metrics_without_sidecars_materialize_an_empty_table_with_a_note(tmp_path):
    lake = DataLake(root=str(tmp_path))
    write(ct_with_nested_and_private(), lake.incoming(DAY) / "a.dcm")
    files = pd.DataFrame({"source": ["a.dcm"], "output": ["p/1.dcm"]})
    WorkPaths(lake.work(DAY)).files.parent.mkdir(parents=True)
    files.to_parquet(WorkPaths(lake.work(DAY)).files)
    lake.write_table("pixel_phi_findings", DAY, pd.DataFrame(columns=FINDING_COLUMNS))

    result = materialize([pixel_phi_metrics], partition_key=DAY, resources={"lake": lake})

    assert result.success
    meta = result.asset_materializations_for_node("pixel_phi_metrics")[0].metadata
    assert meta["images"].value == 0 and "no ground truth" in meta["reason"].value
    assert pd.read_parquet(lake.table_path("pixel_phi_metrics", DAY)).empty
    assert not (tmp_path / "reports").exists()
