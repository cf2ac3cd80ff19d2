"""Reading a bulk repayment file (CSV or Excel) into rows of text by column: the file's
shape only (header, columns, size). What the cells mean is ``payments.services.bulk``'s.

Row numbers are the file's own (the header is a row, as in a spreadsheet), so a person
finds a reported row where their program shows it; blank rows are skipped but counted.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal

from .exceptions import BulkFileRejected

# The columns, in the template's order: (key, required).
COLUMNS = (
    ("loan_number", True),
    ("amount", True),
    ("mode", True),
    ("business_date", False),
    ("receipt_number", True),
    ("collector", True),
    ("external_reference", False),
)
HEADER = [key for key, _ in COLUMNS]
REQUIRED = [key for key, required in COLUMNS if required]
MAX_BYTES = 10 * 1024 * 1024
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls


@dataclass(frozen=True)
class FileRow:
    number: int
    cells: dict[str, str]  # column key -> the cell as text ("" when empty)


@dataclass(frozen=True)
class BulkFile:
    file_format: str  # BulkUpload.Format: CSV or XLSX
    rows: list[FileRow]


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


def read_bulk_file(*, name: str, content: bytes, max_rows: int) -> BulkFile:
    """The rows of the file (at most ``MAX_BYTES``: pass one byte more to have a larger
    one refused). Raises ``BulkFileRejected`` with one message for a file that cannot be
    read as a whole: not CSV or xlsx, no header, a missing column, no rows, too many."""
    if len(content) > MAX_BYTES:
        raise BulkFileRejected(f"The file is larger than {MAX_BYTES // 1024 // 1024} MB.")
    lower = name.lower()
    if content.startswith(OLE_MAGIC) or lower.endswith(".xls"):
        raise BulkFileRejected("Old Excel files (.xls) are not read: save it as .xlsx or CSV.")
    if lower.endswith(".xlsx"):
        file_format, records = "XLSX", _xlsx_records(content)
    elif lower.endswith((".csv", ".txt")):
        file_format, records = "CSV", _csv_records(content)
    else:
        raise BulkFileRejected("Upload a CSV file (.csv) or an Excel workbook (.xlsx).")
    return BulkFile(file_format, _rows(records, max_rows))


def _csv_records(content: bytes) -> list[tuple[int, list]]:
    if content.startswith(XLSX_MAGIC):
        raise BulkFileRejected("This is an Excel workbook, not CSV: name it .xlsx.")
    try:
        text = content.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError:
        raise BulkFileRejected("The file is not UTF-8 text: save it as CSV UTF-8.") from None
    if "\x00" in text:
        raise BulkFileRejected("The file is not CSV text.")
    first_line = text.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter)
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise BulkFileRejected(f"The file is not valid CSV: {exc}.") from None


def _xlsx_records(content: bytes) -> list[tuple[int, list]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise BulkFileRejected("The file is not a valid Excel workbook (.xlsx).") from None
    try:
        sheet = workbook.worksheets[0]
        return [
            (number, list(values))
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
    finally:
        workbook.close()


def _rows(records: list[tuple[int, list]], max_rows: int) -> list[FileRow]:
    filled = [(n, [cell_text(v) for v in values]) for n, values in records]
    filled = [(n, cells) for n, cells in filled if any(cells)]
    if not filled:
        raise BulkFileRejected("The file is empty.")
    _, titles = filled[0]
    keys = [column_key(title) for title in titles]
    known = [key for key in keys if key in HEADER]
    if not known:
        raise BulkFileRejected(
            "The file has no header row: its first row must name the columns "
            f"({', '.join(HEADER)}); download the template."
        )
    doubled = sorted({key for key in known if known.count(key) > 1})
    if doubled:
        raise BulkFileRejected(f"The column {', '.join(doubled)} appears twice in the header.")
    missing = [key for key in REQUIRED if key not in keys]
    if missing:
        raise BulkFileRejected(f"Missing column(s): {', '.join(missing)}.")
    data = filled[1:]
    if not data:
        raise BulkFileRejected("The file has a header but no rows.")
    if len(data) > max_rows:
        raise BulkFileRejected(
            f"The file has {len(data):,} rows; at most {max_rows:,} a file: split it."
        )
    positions = {key: index for index, key in enumerate(keys) if key in HEADER}
    return [
        FileRow(
            number,
            {
                key: cells[positions[key]]
                if key in positions and positions[key] < len(cells)
                else ""
                for key in HEADER
            },
        )
        for number, cells in data
    ]
