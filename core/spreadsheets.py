"""Every CSV and Excel download of the back-office goes through here, so that no cell of
one is a formula (CSV injection, the OWASP rule).

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would
be read as a formula by Excel or LibreOffice (``=HYPERLINK(...)`` in a remark, ``@SUM(...)``):
in a CSV it is written with a leading ``'``; in an Excel file every text cell is stored
as a string (never a formula), and such a cell is also marked "quote prefix", as Excel
does for a typed ``'=...``, so editing it does not turn it into a formula either.

Numbers (``int``, ``Decimal``, ``float``) and dates the code produced stay numbers and
dates, negative ones included: only text is neutralised. ``None`` is an empty cell.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NUMBER_FORMAT = "#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal | float) and not isinstance(value, bool)


def safe_text(value: Any) -> str:
    """``value`` as the text of a cell that no spreadsheet reads as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: Any) -> Any:
    if _is_number(value) or isinstance(value, datetime.date):
        return value
    return safe_text(value)


def csv_response(rows: Iterable[list[Any]], *, filename: str) -> HttpResponse:
    """The rows (the header first) as a CSV download ``filename``.csv."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return response


def xlsx_response(rows: Iterable[list[Any]], *, filename: str, title: str) -> HttpResponse:
    """The rows as an Excel download ``filename``.xlsx with one sheet ``title``: the
    header (the first row) in bold and frozen; text as strings, never formulas."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    bold = Font(bold=True)
    for row_index, row in enumerate(rows, start=1):
        for column_index, value in enumerate(row, start=1):
            cell = sheet.cell(row=row_index, column=column_index)
            _xlsx_set(cell, value)
            if row_index == 1:
                cell.font = bold
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
    return response


def _xlsx_set(cell, value: Any) -> None:
    if value is None:
        return
    if _is_number(value):
        cell.value = value
        if isinstance(value, Decimal):
            cell.number_format = NUMBER_FORMAT
        return
    if isinstance(value, datetime.date):
        cell.value = value
        is_moment = isinstance(value, datetime.datetime)
        cell.number_format = DATETIME_FORMAT if is_moment else DATE_FORMAT
        return
    text = str(value)
    cell.value = text
    cell.data_type = "s"  # openpyxl makes a formula of any text that starts with "="
    if text.startswith(FORMULA_STARTS):
        cell.quotePrefix = True
