import openpyxl
import pandas as pd

from deid_pipeline.core.validate.excel import FAIL_FILL, PASS_FILL, write_workbook
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

    assert book.sheetnames == ["Scoring", "Actions", "Categories", "text_removed", "uid_changed",
                               "Discrepancies"]
    scoring = {row[0]: row[1:] for row in book["Scoring"].iter_rows(min_row=2, values_only=True)}
    assert scoring["All"][:3] == (1, 2, 3)  # Fail, Pass, Total
    assert scoring["<text_removed>"][:3] == (1, 1, 2)
    detail = book["text_removed"]
    assert detail.freeze_panes == "A2"
    fills = [row[0].fill.start_color.rgb for row in detail.iter_rows(min_row=2)]
    assert fills == [FAIL_FILL.start_color.rgb, PASS_FILL.start_color.rgb]
    assert book["Discrepancies"].max_row == 2  # the header and the one failure
