"""Parsing a collection account's bank statement (CSV), all of it before anything is
stored: a file with any bad line is refused whole, each problem reported with its line.

Columns (the header is line 1, names are case-insensitive, in any order, others ignored):

===========  =========================================================================
date         the transaction date: 2026-01-31, 31-01-2026, 31/01/2026 or 31-Jan-2026
narration    or ``description`` / ``particulars``: the bank's text
reference    or ``slip number`` / ``slip no`` / ``ref no``: the deposit slip number
credit       or ``credit amount`` / ``deposit``: the amount paid in, e.g. 12,500.00
debit        optional: a line with a debit and no credit (money going out) is skipped
===========  =========================================================================

Amounts, dates and references are read with ASCII digits only: Python's ``Decimal`` and
``strptime`` would read 1500 in Arabic-Indic or full-width digits as 1500, and a slip
number is ASCII. A cell with a NUL character (which PostgreSQL cannot store) makes its
line a bad line.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from core.money import PAISA

COLUMNS: dict[str, tuple[str, ...]] = {
    "date": ("date", "txn date", "transaction date", "value date"),
    "narration": ("narration", "description", "particulars"),
    "reference": ("reference", "slip number", "slip no", "slip_number", "ref no", "ref"),
    "credit": ("credit", "credit amount", "deposit", "credit_amount"),
}
OPTIONAL = {"debit": ("debit", "debit amount", "withdrawal", "debit_amount")}
DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d-%b-%Y")
MAX_LINES = 100_000
MAX_AMOUNT = Decimal("999999999999.99")
AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
REFERENCE = re.compile(r"[\x20-\x7e]*", re.ASCII)  # printable ASCII
NUL = "\x00"
EXPECTED = "date, narration (or description), reference (or slip number), credit"


@dataclass(frozen=True)
class ParsedLine:
    line_number: int
    txn_date: datetime.date
    narration: str
    reference: str
    credit: Decimal


def statement_parse(data: bytes) -> tuple[list[ParsedLine], list[tuple[int, str]]]:
    """The credit lines of the file and the problems found, as ``(line, message)``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [(1, "The file is not UTF-8 text: export the statement as CSV.")]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [(1, f"The header cannot be read as CSV: {exc}.")]
    if not header or not any(cell.strip() for cell in header):
        return [], [(1, f"The file is empty: it needs a header with the columns {EXPECTED}.")]
    names = [" ".join(cell.strip().lower().split()) for cell in header]
    positions, missing = {}, []
    for column, aliases in {**COLUMNS, **OPTIONAL}.items():
        found = next((names.index(a) for a in aliases if a in names), None)
        if found is None and column in COLUMNS:
            missing.append(column)
        elif found is not None:
            positions[column] = found
    if missing:
        return [], [
            (
                1,
                f"Missing column(s): {', '.join(missing)}. The header has "
                f"{', '.join(h.strip() for h in header) or 'nothing'}; expected {EXPECTED}.",
            )
        ]

    lines: list[ParsedLine] = []
    errors: list[tuple[int, str]] = []
    line_number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append((reader.line_num, f"Broken CSV: {exc}."))
            break  # the reader cannot go on past a broken quote
        line_number = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if line_number > MAX_LINES:
            errors.append((line_number, f"Too many lines: at most {MAX_LINES:,} per file."))
            break
        if any(NUL in cell for cell in row):
            errors.append((line_number, "A NUL character in the line: not a statement line."))
            continue
        if len(row) != len(header):
            errors.append(
                (line_number, f"Expected {len(header)} fields as in the header, found {len(row)}.")
            )
            continue
        parsed = _line(row, positions, line_number, errors)
        if parsed is not None:
            lines.append(parsed)
    if not lines and not errors:
        errors.append((max(line_number, 2), "The file has no credit lines."))
    return lines, errors


def _line(row, positions, line_number, errors) -> ParsedLine | None:
    cell = {column: row[index].strip() for column, index in positions.items()}
    problems = []
    txn_date = _date(cell["date"])
    if txn_date is None:
        problems.append(f"date {cell['date']!r} is not a date (use YYYY-MM-DD)")
    credit = None
    if not cell["credit"]:
        if cell.get("debit"):
            return None  # money going out of the collection account: not a deposit
        problems.append("no credit amount")
    else:
        credit = _amount(cell["credit"])
        if credit is None:
            problems.append(f"credit {cell['credit']!r} is not an amount")
        elif credit <= 0:
            problems.append(f"credit {cell['credit']} must be more than zero")
    if len(cell["reference"]) > 60:
        problems.append("reference longer than 60 characters")
    elif not REFERENCE.fullmatch(cell["reference"]):
        problems.append(f"reference {cell['reference']!r} must be ASCII letters and digits")
    if problems:
        errors.append((line_number, "; ".join(problems).capitalize() + "."))
        return None
    return ParsedLine(line_number, txn_date, cell["narration"][:300], cell["reference"], credit)


def _date(text: str) -> datetime.date | None:
    if not text.isascii():  # strptime reads any script's digits
        return None
    for fmt in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _amount(text: str) -> Decimal | None:
    cleaned = text.replace(",", "").replace("₹", "").strip()
    if not AMOUNT.fullmatch(cleaned):  # Decimal() reads any script's digits, and 1e3
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or value.as_tuple().exponent < -2 or abs(value) > MAX_AMOUNT:
        return None
    return value.quantize(PAISA)
