"""Reading a bulk repayment file (CSV or Excel) into rows of text by column: the file's
shape only (header, columns, size). What the cells mean is ``payments.services.bulk``'s.

Row numbers are the file's own (the header is a row, as in a spreadsheet), so a person
finds a reported row where their program shows it; blank rows are skipped but counted.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

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
    file_format = tabular_format(name=name, head=content[:4])
    if file_format == "CSV":
        try:  # the whole file at once: its encoding before any missing column
            content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BulkFileRejected("The file is not UTF-8 text: save it as CSV UTF-8.") from None
    records = iter_records(io.BytesIO(content), file_format=file_format)
    return BulkFile(file_format, _rows(records, max_rows))


# --- Any tabular file, streamed ------------------------------------------------------------
# The bulk repayment file above and other files read row by row (the legacy system's
# extract, reconciliation.legacy_compare) share these: one reader of CSV and xlsx.


def tabular_format(*, name: str, head: bytes) -> str:
    """CSV or XLSX from the file's name and its first bytes; ``BulkFileRejected`` else."""
    lower = name.lower()
    if head.startswith(OLE_MAGIC) or lower.endswith(".xls"):
        raise BulkFileRejected("Old Excel files (.xls) are not read: save it as .xlsx or CSV.")
    if lower.endswith(".xlsx"):
        return "XLSX"
    if lower.endswith((".csv", ".txt")):
        if head.startswith(XLSX_MAGIC):
            raise BulkFileRejected("This is an Excel workbook, not CSV: name it .xlsx.")
        return "CSV"
    raise BulkFileRejected("Upload a CSV file (.csv) or an Excel workbook (.xlsx).")


def iter_records(file: BinaryIO, *, file_format: str) -> Iterator[tuple[int, list[str]]]:
    """The file's non-blank rows as (row number, cells as text), one at a time: memory
    stays flat whatever the file's size. ``file`` is a binary file open at its start."""
    records = _csv_records(file) if file_format == "CSV" else _xlsx_records(file)
    for number, values in records:
        cells = [cell_text(v) for v in values]
        if any(cells):
            yield number, cells


def header_positions(
    titles: list[str], *, columns: list[str], required: list[str]
) -> dict[str, int]:
    """Where each known column is in the header row (``column_key`` of each title);
    ``BulkFileRejected`` for no header, a column twice or a required one missing."""
    keys = [column_key(title) for title in titles]
    known = [key for key in keys if key in columns]
    if not known:
        raise BulkFileRejected(
            "The file has no header row: its first row must name the columns "
            f"({', '.join(columns)}); download the template."
        )
    doubled = sorted({key for key in known if known.count(key) > 1})
    if doubled:
        raise BulkFileRejected(f"The column {', '.join(doubled)} appears twice in the header.")
    missing = [key for key in required if key not in keys]
    if missing:
        raise BulkFileRejected(f"Missing column(s): {', '.join(missing)}.")
    return {key: index for index, key in enumerate(keys) if key in columns}


def cells_by_column(cells: list[str], positions: dict[str, int], columns: list[str]):
    """A row's cells by column key ("" for a column the file lacks or a short row)."""
    return {
        key: cells[positions[key]] if key in positions and positions[key] < len(cells) else ""
        for key in columns
    }


def _csv_records(file: BinaryIO) -> Iterator[tuple[int, list]]:
    first_line = file.readline()
    file.seek(0)
    if b"\x00" in first_line:
        raise BulkFileRejected("The file is not CSV text.")
    try:
        dialect = csv.Sniffer().sniff(
            first_line.decode("utf-8-sig", errors="replace"), delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    # Excel's "CSV UTF-8" starts with a BOM; decoded line by line as the reader asks
    reader = csv.reader(codecs.iterdecode(file, "utf-8-sig"), delimiter=dialect.delimiter)
    try:
        for row in reader:
            if any("\x00" in cell for cell in row):
                raise BulkFileRejected("The file is not CSV text.")
            yield reader.line_num, row
    except UnicodeDecodeError:
        raise BulkFileRejected("The file is not UTF-8 text: save it as CSV UTF-8.") from None
    except csv.Error as exc:
        raise BulkFileRejected(f"The file is not valid CSV: {exc}.") from None


def _xlsx_records(file: BinaryIO) -> Iterator[tuple[int, list]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise BulkFileRejected("The file is not a valid Excel workbook (.xlsx).") from None
    try:
        sheet = workbook.worksheets[0]
        yield from enumerate(sheet.iter_rows(values_only=True), start=1)
    finally:
        workbook.close()


def _rows(records: Iterator[tuple[int, list[str]]], max_rows: int) -> list[FileRow]:
    first = next(records, None)
    if first is None:
        raise BulkFileRejected("The file is empty.")
    _, titles = first
    positions = header_positions(titles, columns=HEADER, required=REQUIRED)
    data = list(records)
    if not data:
        raise BulkFileRejected("The file has a header but no rows.")
    if len(data) > max_rows:
        raise BulkFileRejected(
            f"The file has {len(data):,} rows; at most {max_rows:,} a file: split it."
        )
    return [FileRow(number, cells_by_column(cells, positions, HEADER)) for number, cells in data]
