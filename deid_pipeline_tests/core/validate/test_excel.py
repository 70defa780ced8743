import zipfile

import openpyxl
import pandas as pd

from deid_pipeline.core.validate.excel import (
    FAIL_FILL,
    FIXED_DATE,
    FIXED_ZIP_TIME,
    PASS_FILL,
    write_sheets,
    write_workbook,
)
from deid_pipeline.core.validate.midib import RESULT_COLUMNS


def results() -> pd.DataFrame:
    rows = []
    for passed, action, name in [(True, "<uid_changed>", "StudyInstanceUID"),
                                 (False, "<text_removed>", "PatientName"),
                                 (True, "<text_removed>", "InstitutionName")]:
        row = dict.fromkeys(RESULT_COLUMNS, "")
        row.update(check_passed=passed, check_score=int(passed), action=action, tag_name=name,
                   modality="CT")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def test_workbook_has_the_reference_sheets_scores_and_colours(tmp_path):
    write_workbook(results(), tmp_path / "report.xlsx")
    book = openpyxl.load_workbook(tmp_path / "report.xlsx")

    assert book.sheetnames == ["Scoring", "Actions", "Categories", "Scoring by series",
                               "Modalities", "text_removed", "uid_changed", "Discrepancies"]
    scoring = {row[0]: row[1:] for row in book["Scoring"].iter_rows(min_row=2, values_only=True)}
    assert scoring["All"][:3] == (1, 2, 3)  # Fail, Pass, Total
    assert scoring["<text_removed>"][:3] == (1, 1, 2)
    detail = book["text_removed"]
    assert detail.freeze_panes == "A2"
    fills = [row[0].fill.start_color.rgb for row in detail.iter_rows(min_row=2)]
    assert fills == [FAIL_FILL.start_color.rgb, PASS_FILL.start_color.rgb]
    assert book["Discrepancies"].max_row == 2  # the header and the one failure


def test_report_tables_become_sheets_in_order_with_missing_values_empty(tmp_path):
    metrics = pd.DataFrame({"modality": ["all", "US"], "recall": [0.9, 0.8],
                            "seconds_per_image": [0.5, float("nan")]})
    counts = pd.DataFrame({"check": ["uid_changed"], "Pass": [3]})

    write_sheets({"Metrics": metrics, "Counts": counts}, tmp_path / "report.xlsx")

    book = openpyxl.load_workbook(tmp_path / "report.xlsx")
    assert book.sheetnames == ["Metrics", "Counts"]
    assert list(book["Metrics"].iter_rows(min_row=2, values_only=True)) == [
        ("all", 0.9, 0.5), ("US", 0.8, None)]


def test_the_same_results_give_the_same_workbook_bytes(tmp_path):
    write_workbook(results(), tmp_path / "a.xlsx")
    write_workbook(results(), tmp_path / "b.xlsx")

    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.xlsx") as archive:
        assert {info.date_time for info in archive.infolist()} == {FIXED_ZIP_TIME}
        assert FIXED_DATE in archive.read("docProps/core.xml")
