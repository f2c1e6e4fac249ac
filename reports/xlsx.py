"""The report as an Excel workbook: a sheet per table and chart, and the rows behind each figure.

The first sheet ("Report") holds the sentences of the report and an index of every other
sheet. Table sheets start with their header row, so each reads straight into a DataFrame;
cells hold exact values with a number format, not rounded text. Times are UTC (Excel has no
time zones, so they are written as UTC wall-clock time).
"""

from __future__ import annotations

import io
import math
import re
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reports.formats import display, excel_format
from reports.model import BulletList, Definitions, Fmt, Paragraph, Report, Table, Value, unwrap

_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
# What a cell cannot hold (control characters: an alert's colour codes in an incident title,
# a byte of garbage in a commit subject) is shown as U+FFFD instead of failing the workbook.
_UNREADABLE = "\ufffd"
_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)


class _Names:
    """Excel sheet names: at most 31 characters (counted as Excel counts them, in UTF-16
    units: an emoji is two), no []:*?/\\, no apostrophe at either end, not "History" (Excel
    keeps that name for itself), unique regardless of case."""

    def __init__(self) -> None:
        self.used: set[str] = {"history"}

    def __call__(self, wanted: str) -> str:
        base = _fit(_BAD_SHEET_CHARS.sub("-", wanted), _SHEET_UNITS) or "Sheet"
        name, counter = base, 2
        while name.casefold() in self.used:
            suffix = f" ({counter})"
            name, counter = _fit(base, _SHEET_UNITS - len(suffix)) + suffix, counter + 1
        self.used.add(name.casefold())
        return name


_SHEET_UNITS = 31


def _fit(text: str, units: int) -> str:
    """The longest start of `text` that is at most `units` UTF-16 units, without a split
    surrogate pair and without an apostrophe at either end."""
    while len(text.encode("utf-16-le")) > 2 * units:
        text = text[:-1]
    return text.strip("'")


def render_xlsx(report: Report) -> bytes:
    workbook = Workbook(write_only=True)
    names = _Names()
    index_sheet = workbook.create_sheet(names("Report"))
    index_rows: list[tuple[str, str, str, int]] = []
    for table in report.tables():
        name = names(table.sheet)
        _write_table(workbook.create_sheet(name), table)
        index_rows.append((name, table.title, table.caption, len(table.rows)))
    for evidence in report.evidence:
        name = names(evidence.sheet)
        _write_frame(workbook.create_sheet(name), evidence.frame)
        index_rows.append((name, evidence.title, evidence.description, len(evidence.frame)))
    _write_report_sheet(index_sheet, report, index_rows)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(
    sheet: Worksheet, value: object, font: Font | None = None, number_format: str = ""
) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=_text(value))
    if font is not None:
        cell.font = font
    if number_format:
        cell.number_format = number_format
    return cell


def _text(value: object) -> object:
    return ILLEGAL_CHARACTERS_RE.sub(_UNREADABLE, value) if isinstance(value, str) else value


def _append(sheet: Worksheet, values: list[object]) -> None:
    sheet.append([_text(value) for value in values])


def _excel_value(value: Value, fmt: Fmt) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        return _naive_utc(value)
    if fmt in (Fmt.TIER, Fmt.STATUS):
        return display(value, fmt)
    return value


def _naive_utc(value: datetime) -> datetime:
    """Excel has no time zones: write UTC wall-clock time (the sheet says times are UTC)."""
    return value.astimezone(UTC).replace(tzinfo=None)


def _write_table(sheet: Worksheet, table: Table) -> None:
    sheet.freeze_panes = "A2"
    for index, column in enumerate(table.columns):
        sheet.column_dimensions[_letter(index)].width = max(12, min(48, len(column.title) + 4))
    _append(sheet, [_cell(sheet, column.title, _BOLD) for column in table.columns])
    for row in table.rows:
        cells = []
        for entry, column in zip(row, table.columns, strict=True):
            value, fmt = unwrap(entry, column)
            cells.append(_cell(sheet, _excel_value(value, fmt), number_format=excel_format(fmt)))
        _append(sheet, cells)


def _write_frame(sheet: Worksheet, frame: pd.DataFrame) -> None:
    sheet.freeze_panes = "A2"
    columns = list(frame.columns)
    for index, column in enumerate(columns):
        sheet.column_dimensions[_letter(index)].width = max(12, min(40, len(str(column)) + 4))
    _append(sheet, [_cell(sheet, str(column), _BOLD) for column in columns])
    datetime_columns = {
        position
        for position, column in enumerate(columns)
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype)
        or pd.api.types.is_datetime64_any_dtype(frame[column])
    }
    for record in frame.itertuples(index=False, name=None):
        cells: list[object] = []
        for position, value in enumerate(record):
            if position in datetime_columns or isinstance(value, datetime):
                cells.append(_datetime_cell(sheet, value))
            else:
                cells.append(_plain_value(sheet, value))
        _append(sheet, cells)


def _datetime_cell(sheet: Worksheet, value: object) -> object:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    return _cell(sheet, stamp.to_pydatetime(), number_format="yyyy-mm-dd hh:mm:ss")


def _plain_value(sheet: Worksheet, value: object) -> object:
    """A frame's value as Excel can hold it: lists joined, durations in hours, others as text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, date):
        return _cell(sheet, value, number_format="yyyy-mm-dd")
    if isinstance(value, list | tuple | set | frozenset):
        return "; ".join(str(item) for item in value)
    if isinstance(value, pd.Timedelta | timedelta):
        return pd.Timedelta(value).total_seconds() / 3600.0
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _write_report_sheet(
    sheet: Worksheet, report: Report, index_rows: list[tuple[str, str, str, int]]
) -> None:
    sheet.column_dimensions["A"].width = 34
    sheet.column_dimensions["B"].width = 60
    sheet.column_dimensions["C"].width = 70
    _append(sheet, [_cell(sheet, report.title, _TITLE)])
    _append(sheet, [report.subtitle])
    _append(sheet, [report.period_label])
    _append(sheet, ["Generated", report.generated_at.strftime("%Y-%m-%d %H:%M UTC")])
    for name, value in report.facts:
        _append(sheet, [name, value])
    _append(sheet, [])
    for depth, section in report.walk():
        _append(sheet, [_cell(sheet, section.title, _BOLD if depth > 1 else _TITLE)])
        for block in section.blocks:
            if isinstance(block, Paragraph):
                _append(sheet, [None, block.text])
            elif isinstance(block, BulletList):
                for item in block.items:
                    _append(sheet, [None, "• " + item])
            elif isinstance(block, Definitions):
                for item in block.items:
                    _append(sheet, [item.term, item.text])
    _append(sheet, [])
    _append(sheet, [_cell(sheet, "Sheets in this workbook", _TITLE)])
    _append(
        sheet,
        [_cell(sheet, heading, _BOLD) for heading in ("Sheet", "What it holds", "Note", "Rows")],
    )
    for name, title, caption, rows in index_rows:
        _append(sheet, [name, title, caption, rows])


def _letter(index: int) -> str:
    return get_column_letter(index + 1)
