"""Workbooks readable as they open (frozen headers, fitted widths, pass/fail colours): the MIDI-B
scoring workbook (Scoring per instance and by series, Actions, Categories, Modalities, one detail
sheet per check kind, Discrepancies) and any set of report tables."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from deid_pipeline.core.atomic import write_atomically
from deid_pipeline.core.validate.midib import scoring, worst_per_series

PASS_FILL = PatternFill("solid", start_color="C6EFCE")
FAIL_FILL = PatternFill("solid", start_color="FFC7CE")
HEADER_FONT = Font(bold=True)
MAX_WIDTH = 60
# Clock readings a workbook would carry (document dates, zip entry times), fixed so that the same
# tables give the same bytes: a re-materialized partition leaves its reports unchanged.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_DATE = b"1980-01-01T00:00:00Z"
DOCUMENT_DATE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
CORE_PROPERTIES = "docProps/core.xml"
DETAIL_COLUMNS = ["check_passed", "tag", "tag_name", "answer_value", "file_value", "action_text",
                  "modality", "patient", "instance"]


def _cell(value: object) -> object:
    """A value openpyxl writes as Excel reads it: numpy scalars as Python ones, missing as empty."""
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _sheet(book: Workbook, title: str, frame: pd.DataFrame, passed_column: str | None = None) -> Worksheet:
    sheet = book.create_sheet(title[:31])
    sheet.append(list(frame.columns))
    for cell in sheet[1]:
        cell.font = HEADER_FONT
    for row in frame.itertuples(index=False):
        sheet.append([_cell(v) for v in row])
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


def _pass_fail(results: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    table = results.groupby(by)["check_passed"].agg(Pass="sum", Total="count").reset_index()
    table["Fail"] = table["Total"] - table["Pass"]
    table["Score"] = (table["Pass"] / table["Total"]).round(6)
    return table[[*by, "Fail", "Pass", "Total", "Score"]]


def actions_table(results: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail per check kind and element, as the reference report's Actions sheet."""
    return _pass_fail(results, ["action", "tag", "tag_name"])


def categories_table(results: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail per category and subcategory (HIPAA, DICOM, TCIA: the reference report's
    Categories sheet; checks of a key without answer_category_v2 fields are 'unknown' but for
    those whose category their action fixes)."""
    return _pass_fail(results, ["category", "subcategory"])


def modalities_table(results: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail per modality and check kind."""
    return _pass_fail(results, ["modality", "action"])


def write_workbook(results: pd.DataFrame, path: Path) -> None:
    sheets = {"Scoring": scoring(results), "Actions": actions_table(results),
              "Categories": categories_table(results),
              "Scoring by series": scoring(worst_per_series(results)),
              "Modalities": modalities_table(results)}
    for action, rows in results.groupby("action"):
        sheets[action.strip("<>")] = rows[DETAIL_COLUMNS]
    sheets["Discrepancies"] = results.loc[~results["check_passed"], ["action"] + DETAIL_COLUMNS]
    write_sheets(sheets, path, passed_column="check_passed")


def write_sheets(sheets: Mapping[str, pd.DataFrame], path: Path,
                 passed_column: str | None = None) -> None:
    """One sheet per frame, in order; cells of `passed_column`, where a sheet has it, coloured."""
    book = Workbook()
    book.remove(book.active)
    for title, frame in sheets.items():
        _sheet(book, title, frame, passed_column)
    saved = io.BytesIO()
    book.save(saved)
    write_atomically(Path(path), lambda tmp: tmp.write_bytes(_without_clock(saved.getvalue())))


def _without_clock(xlsx: bytes) -> bytes:
    out = io.BytesIO()
    with ZipFile(io.BytesIO(xlsx)) as source, ZipFile(out, "w", ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == CORE_PROPERTIES:
                data = DOCUMENT_DATE.sub(FIXED_DATE, data)
            entry = ZipInfo(info.filename, FIXED_ZIP_TIME)
            entry.compress_type = ZIP_DEFLATED
            target.writestr(entry, data)
    return out.getvalue()
