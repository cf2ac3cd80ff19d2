"""Reading a bulk repayment file (CSV or Excel) into rows of text by column: the file's
shape only (header, columns, size), read by ``core.tabular``. What the cells mean is
``payments.services.bulk``'s.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from core.tabular import FileRow, TableRejected, open_table

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

__all__ = ["COLUMNS", "HEADER", "MAX_BYTES", "REQUIRED", "BulkFile", "FileRow", "read_bulk_file"]


@dataclass(frozen=True)
class BulkFile:
    file_format: str  # BulkUpload.Format: CSV or XLSX
    rows: list[FileRow]


def read_bulk_file(*, name: str, content: bytes, max_rows: int) -> BulkFile:
    """The rows of the file (at most ``MAX_BYTES``: pass one byte more to have a larger
    one refused). Raises ``BulkFileRejected`` with one message for a file that cannot be
    read as a whole: not CSV or xlsx, no header, a missing column, no rows, too many."""
    if len(content) > MAX_BYTES:
        raise BulkFileRejected(f"The file is larger than {MAX_BYTES // 1024 // 1024} MB.")
    try:
        table = open_table(name=name, source=io.BytesIO(content), columns=COLUMNS)
        rows = list(table.rows)
    except TableRejected as exc:
        raise BulkFileRejected(exc.message) from None
    if len(rows) > max_rows:
        raise BulkFileRejected(
            f"The file has {len(rows):,} rows; at most {max_rows:,} a file: split it."
        )
    return BulkFile(table.file_format, rows)
