"""The MIDI-B scoring workbook: Scoring, Actions, Categories, one detail sheet per check kind and a
Discrepancies sheet, readable as it opens (frozen headers, fitted widths, pass/fail colours)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.validate.midib import scoring

PASS_FILL = PatternFill("solid", start_color="C6EFCE")
FAIL_FILL = PatternFill("solid", start_color="FFC7CE")
HEADER_FONT = Font(bold=True)
MAX_WIDTH = 60
DETAIL_COLUMNS = ["check_passed", "tag", "tag_name", "answer_value", "file_value", "action_text",
                  "modality", "patient", "instance"]


def _sheet(book: Workbook, title: str, frame: pd.DataFrame, passed_column: str | None = None) -> Worksheet:
    sheet = book.create_sheet(title[:31])
    sheet.append(list(frame.columns))
    for cell in sheet[1]:
        cell.font = HEADER_FONT
    for row in frame.itertuples(index=False):
        sheet.append([v.item() if hasattr(v, "item") else v for v in row])
    sheet.freeze_panes = "A2"
    for index, column in enumerate(frame.columns, 1):
        values = [str(column)] + [str(v) for v in frame[column].head(500)]
        sheet.column_dimensions[get_column_letter(index)].width = min(
            MAX_WIDTH, max(len(v) for v in values) + 2)
    if passed_column is not None and passed_column in frame.columns:
        position = list(frame.columns).index(passed_column) + 1
        for row in sheet.iter_rows(min_row=2, min_col=position, max_col=position):
            for cell in row:
                cell.fill = PASS_FILL if cell.value in (True, 1, 1.0) else FAIL_FILL
    return sheet


def actions_table(results: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail per check kind and element, as the reference report's Actions sheet."""
    grouped = results.groupby(["action", "tag", "tag_name"])["check_passed"]
    table = grouped.agg(Pass="sum", Total="count").reset_index()
    table["Fail"] = table["Total"] - table["Pass"]
    table["Score"] = (table["Pass"] / table["Total"]).round(6)
    return table[["action", "tag", "tag_name", "Fail", "Pass", "Total", "Score"]]


def categories_table(results: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail per modality and check kind (the synthetic key has no HIPAA/DICOM category
    columns; a real MIDI-B key's categories are not carried through yet)."""
    grouped = results.groupby(["modality", "action"])["check_passed"]
    table = grouped.agg(Pass="sum", Total="count").reset_index()
    table["Fail"] = table["Total"] - table["Pass"]
    table["Score"] = (table["Pass"] / table["Total"]).round(6)
    return table[["modality", "action", "Fail", "Pass", "Total", "Score"]]


def write_workbook(results: pd.DataFrame, path: Path) -> None:
    book = Workbook()
    book.remove(book.active)
    score = scoring(results)
    _sheet(book, "Scoring", score)
    _sheet(book, "Actions", actions_table(results))
    _sheet(book, "Categories", categories_table(results))
    for action, rows in results.groupby("action"):
        _sheet(book, action.strip("<>"), rows[DETAIL_COLUMNS], "check_passed")
    _sheet(book, "Discrepancies", results.loc[~results["check_passed"],
                                              ["action"] + DETAIL_COLUMNS], "check_passed")
    write_atomically(Path(path), lambda tmp: book.save(tmp))
