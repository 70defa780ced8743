import json

import pandas as pd
import pytest

from deid_pipeline.core.deid.batch import FINDING_COLUMNS
from deid_pipeline.core.validate.pixel_metrics import TruthWord
from deid_pipeline.core.validate.pixel_table import (
    METRIC_COLUMNS,
    REDACT_ALL_TEXT,
    REDACT_PHI,
    ImageTruth,
    metrics_frame,
    partition_truth,
)
from deid_pipeline_tests.dicom_factory import ct_with_nested_and_private, write

SHAPE = (64, 64)
NAME = TruthWord((4, 4, 20, 10), True, "name")
DATE = TruthWord((4, 30, 20, 36), True, "date")
LABEL = TruthWord((40, 50, 60, 56), False, "annotation")


def finding(file, word, is_phi):
    x1, y1, x2, y2 = word.box
    return {"file": file, "frames": "0", "x1": x1, "y1": y1, "x2": x2, "y2": y2,
            "is_phi": is_phi, "reason": "test", "text_score": 1.0}


def table(findings):
    return pd.DataFrame(findings, columns=FINDING_COLUMNS)


@pytest.fixture
def truth():
    return {"a.dcm": ImageTruth("US", SHAPE, [NAME, DATE, LABEL]),
            "b.dcm": ImageTruth("CR", SHAPE, [NAME, LABEL])}


def test_each_setting_is_scored_per_modality_with_the_all_row_first(truth):
    # Everything read; the date on a.dcm was not judged PHI, the annotation rightly not.
    findings = table([finding("a.dcm", NAME, True), finding("a.dcm", DATE, False),
                      finding("a.dcm", LABEL, False), finding("b.dcm", NAME, True),
                      finding("b.dcm", LABEL, False)])

    metrics = metrics_frame(truth, findings, seconds_per_image=0.25)

    assert list(metrics.columns) == METRIC_COLUMNS
    rows = metrics.set_index(["setting", "modality"])
    assert list(rows.index) == [(REDACT_PHI, "all"), (REDACT_PHI, "CR"), (REDACT_PHI, "US"),
                                (REDACT_ALL_TEXT, "all"), (REDACT_ALL_TEXT, "CR"),
                                (REDACT_ALL_TEXT, "US")]
    assert rows.loc[(REDACT_PHI, "US"), "recall"] == 0.5  # the date stayed
    assert rows.loc[(REDACT_PHI, "CR"), "recall"] == 1.0
    assert rows.loc[(REDACT_PHI, "all"), ["images", "phi_words"]].tolist() == [2, 3]
    assert rows.loc[(REDACT_PHI, "all"), "recall"] == round(2 / 3, 4)
    assert rows.loc[(REDACT_PHI, "all"), "precision"] == 1.0
    # Hiding every box finds the date too, at the cost of the annotations.
    assert rows.loc[(REDACT_ALL_TEXT, "all"), "recall"] == 1.0
    assert rows.loc[(REDACT_ALL_TEXT, "all"), "precision"] == 0.6
    assert rows.loc[(REDACT_ALL_TEXT, "all"), "non_phi_kept"] == 0.0
    assert rows.loc[(REDACT_PHI, "all"), "seconds_per_image"] == 0.25
    assert pd.isna(rows.loc[(REDACT_PHI, "US"), "seconds_per_image"])  # timed per partition


def test_an_image_without_findings_counts_its_phi_as_missed(truth):
    metrics = metrics_frame(truth, table([finding("b.dcm", NAME, True)]))
    rows = metrics.set_index(["setting", "modality"])
    assert rows.loc[(REDACT_PHI, "US"), "recall"] == 0.0
    assert rows.loc[(REDACT_PHI, "all"), "images"] == 2


def test_no_truth_gives_an_empty_table_with_the_metric_columns():
    metrics = metrics_frame({}, table([]))
    assert metrics.empty and list(metrics.columns) == METRIC_COLUMNS


def test_partition_truth_reads_sidecars_and_headers_keyed_by_output(tmp_path):
    ds = ct_with_nested_and_private()
    ds.Rows = ds.Columns = 8
    ds.PixelData = bytes(8 * 8 * 2)
    write(ds, tmp_path / "in" / "with.dcm")
    (tmp_path / "in" / "with.json").write_text(json.dumps({"words": [
        {"text": "DOE", "bbox": [1, 1, 4, 3], "is_phi": True, "category": "name"}]}))
    write(ds, tmp_path / "in" / "without.dcm")
    files = pd.DataFrame({"source": ["with.dcm", "without.dcm"],
                          "output": ["p/1.dcm", "p/2.dcm"]})

    truth = partition_truth(files, tmp_path / "in")

    assert list(truth) == ["p/1.dcm"]
    assert truth["p/1.dcm"] == ImageTruth("CT", (8, 8), [TruthWord((1, 1, 4, 3), True, "name")])
