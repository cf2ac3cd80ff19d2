"""Reading a table a person made (CSV or Excel .xlsx) as rows of text by column, streamed:
the file's shape only (header, columns, encoding). What the cells mean is the caller's
(the bulk repayment upload, the imports).

Row numbers are the file's own (the header is a row, as in a spreadsheet), so a person
finds a reported row where their program shows it; blank rows are skipped but counted.
A CSV is read line by line and an Excel sheet with openpyxl's read-only mode, so a file of
a million rows is never held in memory.
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from .errors import ApplicationError

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls


class TableRejected(ApplicationError):
    """A file that cannot be read as a table: not CSV or xlsx, no header, a column missing."""

    code = "file_rejected"


@dataclass(frozen=True)
class FileRow:
    number: int
    cells: dict[str, str]  # column key -> the cell as text ("" when empty)


@dataclass
class Table:
    file_format: str  # CSV or XLSX
    header: list[str]  # the file's column keys, in its order
    rows: Iterator[FileRow]  # the data rows, read as they are iterated


def column_key(title: str) -> str:
    """A header cell as a column key: case, spaces, hyphens and underscores do not matter
    ("Loan number", "LOAN_NUMBER" and "loan-number" are all ``loan_number``)."""
    return "_".join(re.findall(r"[a-z0-9]+", str(title).lower()))


def cell_text(value) -> str:
    """A cell as text: Excel gives numbers and dates, which become what a person typed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(Decimal(repr(value)))
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value).strip()


def file_format_of(name: str, head: bytes) -> str:
    """CSV or XLSX from the file's name and its first bytes; ``TableRejected`` otherwise."""
    lower = name.lower()
    if head.startswith(OLE_MAGIC) or lower.endswith(".xls"):
        raise TableRejected("Old Excel files (.xls) are not read: save it as .xlsx or CSV.")
    if lower.endswith(".xlsx"):
        return "XLSX"
    if lower.endswith((".csv", ".txt")):
        if head.startswith(XLSX_MAGIC):
            raise TableRejected("This is an Excel workbook, not CSV: name it .xlsx.")
        return "CSV"
    raise TableRejected("Upload a CSV file (.csv) or an Excel workbook (.xlsx).")


def open_table(*, name: str, source: BinaryIO, columns: Sequence[tuple[str, bool]]) -> Table:
    """The table in ``source`` (a binary file object, seekable for Excel), with ``columns``
    as ``(key, required)``. The header is read and checked now; the rows as they are
    iterated. Raises ``TableRejected`` with one message for a file that cannot be read as
    a whole: not CSV or xlsx, not UTF-8, no header, a column missing or twice, no rows."""
    head = source.read(8)
    source.seek(0)
    file_format = file_format_of(name, head)
    records = _xlsx_records(source) if file_format == "XLSX" else _csv_records(source)
    filled = _filled(records)
    first = next(filled, None)
    if first is None:
        raise TableRejected("The file is empty.")
    keys = [column_key(title) for title in first[1]]
    _check_header(keys, columns)
    wanted = [key for key, _ in columns]
    positions = {key: index for index, key in enumerate(keys) if key in wanted}
    return Table(file_format, keys, _rows(filled, wanted, positions))


def _check_header(keys: list[str], columns: Sequence[tuple[str, bool]]) -> None:
    wanted = [key for key, _ in columns]
    known = [key for key in keys if key in wanted]
    if not known:
        raise TableRejected(
            "The file has no header row: its first row must name the columns "
            f"({', '.join(wanted)}); download the template."
        )
    doubled = sorted({key for key in known if known.count(key) > 1})
    if doubled:
        raise TableRejected(f"The column {', '.join(doubled)} appears twice in the header.")
    missing = [key for key, required in columns if required and key not in keys]
    if missing:
        raise TableRejected(f"Missing column(s): {', '.join(missing)}.")


def _rows(filled, wanted: list[str], positions: dict[str, int]) -> Iterator[FileRow]:
    empty = True
    for number, cells in filled:
        empty = False
        yield FileRow(
            number,
            {
                key: cells[positions[key]]
                if key in positions and positions[key] < len(cells)
                else ""
                for key in wanted
            },
        )
    if empty:
        raise TableRejected("The file has a header but no rows.")


def _filled(records) -> Iterator[tuple[int, list[str]]]:
    for number, values in records:
        cells = [cell_text(v) for v in values]
        if any(cells):
            yield number, cells


def _csv_records(source: BinaryIO) -> Iterator[tuple[int, list]]:
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")  # Excel's CSV UTF-8: BOM
    try:
        first_line = text.readline()
    except UnicodeDecodeError:
        raise TableRejected("The file is not UTF-8 text: save it as CSV UTF-8.") from None
    if "\x00" in first_line:
        raise TableRejected("The file is not CSV text.")
    try:
        dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(itertools.chain([first_line], text), delimiter=dialect.delimiter)
    return _csv_iter(reader)


def _csv_iter(reader) -> Iterator[tuple[int, list]]:
    try:
        for row in reader:
            if any("\x00" in cell for cell in row):
                raise TableRejected("The file is not CSV text.")
            yield reader.line_num, row
    except UnicodeDecodeError:
        raise TableRejected("The file is not UTF-8 text: save it as CSV UTF-8.") from None
    except csv.Error as exc:
        raise TableRejected(f"The file is not valid CSV: {exc}.") from None


def _xlsx_records(source: BinaryIO) -> Iterator[tuple[int, list]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise TableRejected("The file is not a valid Excel workbook (.xlsx).") from None
    return _xlsx_iter(workbook)


def _xlsx_iter(workbook) -> Iterator[tuple[int, list]]:
    try:
        sheet = workbook.worksheets[0]
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    finally:
        workbook.close()
