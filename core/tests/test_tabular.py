"""core.tabular: a CSV or Excel table read row by row (streamed), its header checked."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from core.tabular import TableRejected, open_table

COLUMNS = [("code", True), ("amount", True), ("note", False)]


def _rows(name: str, content: bytes):
    table = open_table(name=name, source=io.BytesIO(content), columns=COLUMNS)
    return table, list(table.rows)


def test_a_csv_with_a_bom_semicolons_and_blank_lines_keeps_the_files_line_numbers():
    content = "\ufeffCode;AMOUNT;Other\r\nA1;10;x\r\n;;\r\nA2;2.5\r\n".encode()
    table, rows = _rows("f.csv", content)
    assert table.file_format == "CSV" and table.header == ["code", "amount", "other"]
    assert [(r.number, r.cells) for r in rows] == [
        (2, {"code": "A1", "amount": "10", "note": ""}),
        (4, {"code": "A2", "amount": "2.5", "note": ""}),
    ]


def test_an_excel_sheet_gives_its_cells_as_typed():
    book = Workbook()
    book.active.append(["code", "amount", "note"])
    book.active.append(["A1", 1500.5, None])
    out = io.BytesIO()
    book.save(out)
    table, rows = _rows("f.xlsx", out.getvalue())
    assert table.file_format == "XLSX"
    assert rows[0].number == 2 and rows[0].cells == {"code": "A1", "amount": "1500.5", "note": ""}


def test_rows_are_read_as_they_are_iterated():
    content = b"code,amount\n" + b"".join(b"A%d,1\n" % n for n in range(100_000))
    table = open_table(name="f.csv", source=io.BytesIO(content), columns=COLUMNS)
    first = next(table.rows)
    assert first.cells["code"] == "A0"  # the rest is not read yet: the reader is a generator


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("f.xls", b"x", "Old Excel files"),
        ("f.pdf", b"x", "Upload a CSV file"),
        ("f.csv", b"PK\x03\x04rest", "This is an Excel workbook"),
        ("f.csv", b"\xff\xfe\x00bad", "not UTF-8"),
        ("f.csv", b"", "The file is empty."),
        ("f.csv", b"x,y\n1,2\n", "no header row"),
        ("f.csv", b"code,code,amount\n1,2,3\n", "The column code appears twice"),
        ("f.csv", b"code,note\n1,2\n", "Missing column(s): amount."),
        ("f.xlsx", b"not a zip", "not a valid Excel workbook"),
    ],
)
def test_a_file_that_is_not_a_table_is_refused_with_one_message(name, content, message):
    with pytest.raises(TableRejected, match=message.replace("(", r"\(").replace(")", r"\)")):
        _rows(name, content)


def test_a_header_without_rows_is_refused_when_the_rows_are_read():
    table = open_table(name="f.csv", source=io.BytesIO(b"code,amount\n"), columns=COLUMNS)
    with pytest.raises(TableRejected, match="a header but no rows"):
        list(table.rows)
