"""The dual run: the legacy loan system's end-of-day extract compared with this system's
figures for the same date, loan by loan (``manage.py compare_legacy``; docs/dual-run.md).

The extract is streamed: each row is checked and copied into a temporary table
(``COPY``), then one ordered full join with the loans finds the loans on one side only,
and the loans on both sides are compared in batches. What this system owed at the end of
the date is rebuilt from the instalments as they are now, less what was posted after the
date (by business date) and what charges were raised after it, plus what was reversed or
waived after it; DPD follows ``loans.dues`` as of the date (an instalment due on the date
itself is not yet overdue). Memory stays flat whatever the book's size: the differences
go to the result file as they are found, and only the per-branch summary is kept.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, TextIO

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from core.spreadsheets import csv_cell
from core.tabular import TableRejected, open_table
from loans.dues import dues_of
from loans.models import Instalment, LoanAccount, LoanCharge
from payments.models import Posting

from .exceptions import LegacyExtractRejected

ZERO = Decimal("0.00")
AMOUNTS = ("outstanding_principal", "outstanding_interest", "outstanding_charges")
FIGURES = (*AMOUNTS, "last_payment_date", "dpd")
COLUMNS = ["loan_number", *FIGURES, "branch_code"]
REQUIRED = ["loan_number", *FIGURES]
RESULT_HEADER = ["branch", "loan_number", "difference", "field", "legacy", "this_system", "delta"]
BATCH = 1000
NO_BRANCH = "-"


class Kind:
    MISMATCH = "MISMATCH"  # on both sides, a figure differs
    ONLY_IN_EXTRACT = "ONLY_IN_EXTRACT"  # the legacy system has it, this one does not
    ONLY_HERE = "ONLY_HERE"  # open here on the date, absent from the extract


@dataclass
class BranchSummary:
    compared: int = 0
    agreeing: int = 0
    differing: int = 0
    only_in_extract: int = 0
    only_here: int = 0
    # legacy less this system, over the loans on both sides
    principal_difference: Decimal = ZERO
    fields: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class CompareReport:
    as_of: date
    extract_rows: int = 0
    differences: int = 0
    branches: dict[str, BranchSummary] = field(default_factory=lambda: defaultdict(BranchSummary))

    @property
    def agrees(self) -> bool:
        return self.differences == 0

    def totals(self) -> BranchSummary:
        total = BranchSummary()
        for summary in self.branches.values():
            for name in ("compared", "agreeing", "differing", "only_in_extract", "only_here"):
                setattr(total, name, getattr(total, name) + getattr(summary, name))
            total.principal_difference += summary.principal_difference
            for name, count in summary.fields.items():
                total.fields[name] += count
        return total


@dataclass
class _Figures:
    outstanding_principal: Decimal
    outstanding_interest: Decimal
    outstanding_charges: Decimal
    last_payment_date: date | None
    dpd: int


@dataclass
class _Inst:
    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    charges_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    charges_paid: Decimal


# --- Reading the extract ----------------------------------------------------------------

_DAY_FIRST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")


def parse_amount(text: str) -> Decimal:
    """An amount in rupees with at most two decimals; Indian digit grouping and a rupee
    sign are allowed ("1,23,456.50", "₹ 500")."""
    cleaned = text.replace(",", "").replace("₹", "").replace(" ", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"{text!r} is not an amount in rupees and paise")
    return amount.quantize(Decimal("0.01"))


def parse_day(text: str) -> date | None:
    """YYYY-MM-DD, or DD-MM-YYYY / DD/MM/YYYY as Indian systems write it; empty: none."""
    if not text:
        return None
    try:
        match = _DAY_FIRST.fullmatch(text)
        if match:
            day, month, year = (int(g) for g in match.groups())
            return date(year, month, day)
        return date.fromisoformat(text[:10] if "T" in text else text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD or DD-MM-YYYY)") from None


def parse_dpd(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number of days (0 or more)")
    return int(text)


def _extract_rows(file: BinaryIO, name: str) -> Iterator[tuple]:
    """(line, loan number, figures..., branch code) per row, checked; the first bad cell
    raises ``LegacyExtractRejected`` naming its row and column."""
    try:
        table = open_table(
            name=name, source=file, columns=[(key, key in REQUIRED) for key in COLUMNS]
        )
        for row in table.rows:
            yield _checked(row.number, row.cells)
    except TableRejected as exc:
        raise LegacyExtractRejected(str(exc)) from None


def _checked(line: int, row: dict[str, str]) -> tuple:
    column = "loan_number"
    try:
        loan_number = row["loan_number"].strip().upper()
        if not loan_number:
            raise ValueError("empty")
        values = []
        for column in FIGURES:
            text = row[column].strip()
            if column == "last_payment_date":
                values.append(parse_day(text))
            elif not text:
                raise ValueError("empty")
            else:
                values.append(parse_dpd(text) if column == "dpd" else parse_amount(text))
    except ValueError as exc:
        raise LegacyExtractRejected(f"row {line}, {column}: {exc}") from None
    return (line, loan_number, *values, row["branch_code"].strip().upper())


# --- This system's figures as of the date -----------------------------------------------


_UNPAID = (
    "(principal_due + interest_due + charges_due - principal_paid - interest_paid - charges_paid)"
)
# The figures of loans whose instalments nothing changed after the date, straight from
# the instalments as they are (``loans.dues``' DPD: the oldest unpaid instalment due
# before the date).
_AS_THEY_ARE = f"""
SELECT loan_id, SUM(principal_due - principal_paid), SUM(interest_due - interest_paid),
       SUM(charges_due - charges_paid), MIN(due_date) FILTER (WHERE due_date < %s AND {_UNPAID} > 0)
FROM {Instalment._meta.db_table} WHERE loan_id = ANY(%s) GROUP BY loan_id
"""  # noqa: S608 - a model's table


def _figures_as_of(loan_ids: list[int], as_of: date) -> dict[int, tuple[str, _Figures]]:
    """(branch code, figures at the end of ``as_of``) of each loan: from one aggregate
    for the loans nothing changed since, rebuilt instalment by instalment for the others
    (a payment posted for a later date, a reversal, a charge raised or waived after it)."""
    if not loan_ids:
        return {}
    tz = timezone.get_current_timezone()
    after = datetime.combine(as_of + timedelta(days=1), time(0), tz)  # the date's end, IST
    loans = {
        row["id"]: row
        for row in LoanAccount.objects.filter(id__in=loan_ids).values(
            "id", "branch__code", *AMOUNTS, "dpd", "last_payment_date"
        )
    }
    # postings counted now but not at the date's end (sign -1), and the reverse (+1)
    later = Q(business_date__gt=as_of, reversed_at__isnull=True)
    undone_later = Q(business_date__lte=as_of, reversed_at__gte=after)
    postings = list(
        Posting.objects.filter(later | undone_later, loan_id__in=loan_ids).only(
            "loan_id", "business_date", "allocations"
        )
    )
    charges = list(
        LoanCharge.objects.filter(
            Q(created_at__gte=after) | Q(waived_at__gte=after), loan_id__in=loan_ids
        ).only("loan_id", "instalment_id", "total", "created_at", "waived_amount", "waived_at")
    )
    changed = {p.loan_id for p in postings} | {c.loan_id for c in charges}
    owed: dict[int, tuple[list[Decimal], int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_AS_THEY_ARE, [as_of, [i for i in loan_ids if i not in changed]])
        for loan_id, principal, interest, charges_owed, oldest in cursor.fetchall():
            dpd = (as_of - oldest).days if oldest else 0
            owed[loan_id] = ([principal, interest, charges_owed], dpd)
    if changed:
        owed.update(_rebuilt(changed, as_of, after, postings, charges))
    last_paid = dict(
        Posting.objects.filter(loan_id__in=loan_ids, business_date__lte=as_of)
        .filter(Q(reversed_at__isnull=True) | Q(reversed_at__gte=after))
        .values("loan_id")
        .annotate(last=Max("business_date"))
        .values_list("loan_id", "last")
    )
    figures = {}
    for loan_id, loan in loans.items():
        # a loan without a schedule (bulk-loaded): the figures it carries
        amounts, dpd = owed.get(loan_id) or ([loan[name] for name in AMOUNTS], loan["dpd"])
        # The loan's own last payment date counts when it is not after the date: a payment
        # of a history loaded with the book (no posting here) is known only by it.
        last = last_paid.get(loan_id)
        stored = loan["last_payment_date"]
        if stored is not None and stored <= as_of and (last is None or stored > last):
            last = stored
        figures[loan_id] = (
            loan["branch__code"],
            _Figures(*amounts, last_payment_date=last, dpd=dpd),
        )
    return figures


def _rebuilt(loan_ids, as_of, after, postings, charges) -> dict[int, tuple[list[Decimal], int]]:
    """The instalments of the loans as they were at the end of the date, and their
    figures: what was paid after it taken out, what was undone after it put back."""
    instalments: dict[int, dict[int, _Inst]] = defaultdict(dict)
    for row in Instalment.objects.filter(loan_id__in=loan_ids).values(
        "id", "loan_id", *Instalment.SCHEDULE_FIELDS
    ):
        loan_id, pk = row.pop("loan_id"), row.pop("id")
        instalments[loan_id][pk] = _Inst(**row)
    for posting in postings:
        sign = -1 if posting.business_date > as_of else 1
        for allocation in posting.allocations:
            inst = instalments[posting.loan_id].get(allocation["instalment"])
            if inst is None:
                continue
            for component in ("principal", "interest", "charges"):
                paid = f"{component}_paid"
                setattr(inst, paid, getattr(inst, paid) + sign * Decimal(allocation[component]))
    for charge in charges:
        inst = instalments[charge.loan_id].get(charge.instalment_id)
        if inst is None:
            continue
        if charge.created_at >= after:
            inst.charges_due -= charge.total  # not raised yet at the date's end
        if charge.waived_at and charge.waived_at >= after and charge.created_at < after:
            inst.charges_due += charge.waived_amount  # not waived yet
    rebuilt = {}
    for loan_id, by_pk in instalments.items():
        schedule = list(by_pk.values())
        amounts = [
            sum((getattr(i, f"{c}_due") - getattr(i, f"{c}_paid") for i in schedule), ZERO)
            for c in ("principal", "interest", "charges")
        ]
        rebuilt[loan_id] = (amounts, dues_of(schedule, as_of).dpd)
    return rebuilt


# --- The comparison ---------------------------------------------------------------------

_OPEN_ON = """
    l.disbursed_on <= %(as_of)s AND l.status <> 'WRITTEN_OFF'
    AND NOT (l.status = 'CLOSED' AND COALESCE(l.last_payment_date, l.disbursed_on) <= %(as_of)s)
"""


def legacy_compare(
    *,
    file: BinaryIO,
    name: str,
    as_of: date,
    out: TextIO,
    read_progress: Callable[[int], None] = lambda n: None,
    compare_progress: Callable[[int], None] = lambda n: None,
    compare_total: Callable[[int], None] = lambda n: None,
) -> CompareReport:
    """Compare the extract (a binary file open at its start) with this system as of
    ``as_of``; every difference is written to ``out`` as a CSV row (``RESULT_HEADER``).
    Raises ``LegacyExtractRejected`` for an extract that cannot be read: then ``out``
    holds a header at most, and the caller drops it."""
    report = CompareReport(as_of=as_of)
    writer = csv.writer(out)
    writer.writerow(RESULT_HEADER)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS legacy_extract")  # a session's earlier run
        cursor.execute(
            "CREATE TEMPORARY TABLE legacy_extract (line integer, loan_number text, "
            "outstanding_principal numeric(16,2), outstanding_interest numeric(16,2), "
            "outstanding_charges numeric(16,2), last_payment_date date, dpd integer, "
            "branch_code text) ON COMMIT DROP"
        )
        columns = ", ".join(["line", "loan_number", *FIGURES, "branch_code"])
        with cursor.cursor.copy(f"COPY legacy_extract ({columns}) FROM STDIN") as copy:
            for row in _extract_rows(file, name):
                copy.write_row(row)
                report.extract_rows += 1
                read_progress(1)
        if not report.extract_rows:
            raise LegacyExtractRejected("The extract has a header but no rows.")
        cursor.execute("CREATE INDEX ON legacy_extract (loan_number)")
        cursor.execute(
            "SELECT loan_number, MIN(line), MAX(line) FROM legacy_extract "
            "GROUP BY loan_number HAVING COUNT(*) > 1 ORDER BY MIN(line) LIMIT 1"
        )
        doubled = cursor.fetchone()
        if doubled:
            raise LegacyExtractRejected(
                f"row {doubled[2]}, loan_number: {doubled[0]} is in the extract twice "
                f"(also row {doubled[1]})"
            )
        cursor.execute("ANALYZE legacy_extract")
        params = {"as_of": as_of}
        loans = LoanAccount._meta.db_table
        cursor.execute(
            f"SELECT COUNT(*) FROM {loans} l WHERE {_OPEN_ON} AND NOT EXISTS "  # noqa: S608
            "(SELECT 1 FROM legacy_extract e WHERE e.loan_number = l.loan_number)",
            params,
        )
        compare_total(report.extract_rows + cursor.fetchone()[0])
        joined = (
            f"SELECT l.id, COALESCE(l.loan_number, e.loan_number), e.branch_code, "  # noqa: S608
            f"{', '.join(f'e.{name}' for name in FIGURES)}, e.line IS NOT NULL "
            f"FROM legacy_extract e FULL JOIN {loans} l ON l.loan_number = e.loan_number "
            f"WHERE e.line IS NOT NULL OR ({_OPEN_ON}) "
            "ORDER BY COALESCE(l.loan_number, e.loan_number)"
        )
        with connection.chunked_cursor() as rows:
            rows.execute(joined, params)
            while batch := rows.fetchmany(BATCH):
                _compare_batch(batch, as_of, report, writer)
                compare_progress(len(batch))
    return report


def _compare_batch(batch, as_of: date, report: CompareReport, writer) -> None:
    ours = _figures_as_of([row[0] for row in batch if row[0] is not None], as_of)
    for loan_id, loan_number, legacy_branch, *values, in_extract in batch:
        if loan_id is None:
            branch = legacy_branch or NO_BRANCH
            report.branches[branch].only_in_extract += 1
            _write(report, writer, branch, loan_number, Kind.ONLY_IN_EXTRACT)
            continue
        branch, here = ours[loan_id]
        summary = report.branches[branch]
        if not in_extract:
            summary.only_here += 1
            _write(report, writer, branch, loan_number, Kind.ONLY_HERE)
            continue
        legacy = _Figures(*values)
        summary.compared += 1
        summary.principal_difference += legacy.outstanding_principal - here.outstanding_principal
        differing = False
        for name in FIGURES:
            theirs, mine = getattr(legacy, name), getattr(here, name)
            if theirs != mine:
                differing = True
                summary.fields[name] += 1
                delta = theirs - mine if name in AMOUNTS or name == "dpd" else ""
                _write(
                    report, writer, branch, loan_number, Kind.MISMATCH, name, theirs, mine, delta
                )
        if differing:
            summary.differing += 1
        else:
            summary.agreeing += 1


def _write(report, writer, branch, loan_number, kind, name="", legacy="", mine="", delta=""):
    report.differences += 1
    writer.writerow([csv_cell(v) for v in (branch, loan_number, kind, name, legacy, mine, delta)])
