"""The collection sheet's reads: per branch and business date, the branch's open loans
that are due on or before that date, overdue, or paid that day, with what a collector
needs to call on and collect from each borrower.

The figures are the loans' dues fields (``next_due_date``, ``next_due_amount``, the
overdue amounts, ``dpd``, ``bucket``, ``last_payment_*``), which the posting and the
nightly refresh keep; what the branch recorded on the day comes from DynamoDB (the
``branch_day`` index, through ``payments.selectors``). Everything goes through the one
scoping function: a branch the user may not see has no sheet.

A row is on the sheet when its loan is ACTIVE and
- it is overdue (``dpd > 0``): the arrears are due now;
- or its next instalment falls due on or before the date (on it for today's sheet;
  earlier when the nightly refresh has not run yet, or a later date is planned ahead);
- or it was paid on the date (so that a loan stays on the day's sheet, marked
  collected, once its payment is posted and its dues move on).

Amount due = arrears + the next instalment when it falls due on or before the date.
"""

from __future__ import annotations

import datetime
import logging
import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import reduce
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Concat

from accounts.models import Branch, User
from accounts.scoping import can_see_branch, scope_queryset
from core.errors import ApplicationError
from core.money import from_paise
from dynamo.errors import is_unavailable
from dynamo.query import query_partition
from loans.models import CoBorrower, LoanAccount
from mandates.models import Mandate
from mandates.selectors import mandates_visible
from payments.ddb_models import TransactionItem, branch_day_key

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")
UNASSIGNED = "none"  # the collector filter's value for loans without a collection officer
# A transaction of the day that counts as collected (a failed or reversed one does not).
COLLECTED_STATUSES = frozenset({"RECEIVED", "POSTED"})
DAY_ATTRIBUTES = ["txn_id", "loan_id", "receipt_number", "amount_paise", "mode", "status"]
# The loan's current mandate: the first status in this order, the newest of it.
MANDATE_PRECEDENCE = [
    Mandate.Status.ACTIVE,
    Mandate.Status.SUSPENDED,
    Mandate.Status.SUBMITTED_TO_BANK,
    Mandate.Status.APPROVED,
    Mandate.Status.PENDING_APPROVAL,
    Mandate.Status.DRAFT,
    Mandate.Status.REJECTED,
    Mandate.Status.CANCELLED,
    Mandate.Status.EXPIRED,
]
EXPORT_CHUNK = 500  # loans read at a time for the export and the print
BUCKET_LABELS = dict(LoanAccount.Bucket.choices)
# What a row shows of a loan, its customer and its collection officer (not whole rows).
SHEET_COLUMNS = [
    "loan_number",
    "branch_id",
    "status",
    "next_due_date",
    "next_due_amount",
    "dpd",
    "bucket",
    "last_payment_date",
    "last_payment_amount",
    "customer__name",
    "customer__mobile",
    "collection_officer__username",
    "collection_officer__first_name",
    "collection_officer__last_name",
]

_MONEY = DecimalField(max_digits=16, decimal_places=2)


class SheetBranchNotFound(ApplicationError):
    code = "branch_not_found"
    status = 404


# --- Where: branches, areas, collectors -------------------------------------------------


def sheet_branches(*, user: User, area_id: int | None = None) -> QuerySet[Branch]:
    """The active branches whose sheet ``user`` may open (of ``area_id`` when given)."""
    branches = scope_queryset(Branch.objects.filter(is_active=True), user)
    if area_id is not None:
        branches = branches.filter(area_id=area_id)
    return branches.select_related("area").order_by("code")


def sheet_branch(*, user: User, branch_id: int) -> Branch:
    branch = sheet_branches(user=user).filter(pk=branch_id).first()
    if branch is None or not can_see_branch(user, branch.pk):
        raise SheetBranchNotFound("No such branch that you may see.")
    return branch


def sheet_collectors(*, branch_id: int) -> QuerySet[User]:
    """Who may be a loan's collection officer at the branch: its active staff."""
    return User.objects.filter(
        is_active=True, level=User.Level.BRANCH, home_branch_id=branch_id
    ).order_by("first_name", "last_name", "username")


# --- The sheet's loans ------------------------------------------------------------------


@dataclass(frozen=True)
class SheetFilters:
    branch_id: int
    business_date: datetime.date
    bucket: str = ""  # a LoanAccount.Bucket value, or "" for all
    collector: str = ""  # a user id, UNASSIGNED, or "" for all


def sheet_loans(*, user: User, filters: SheetFilters) -> QuerySet[LoanAccount]:
    """The sheet's loans, most days past due first, then by loan number, each with
    ``amount_due``, ``arrears``, ``co_borrower_names`` and ``current_mandate`` (a status)
    annotated and its customer and collection officer joined. Raises
    ``SheetBranchNotFound`` for a branch the user may not see."""
    return (
        _sheet_filtered(user=user, filters=filters)
        .annotate(
            arrears=_arrears(),
            amount_due=_amount_due(filters.business_date),
            co_borrower_names=_co_borrower_names(user),
            current_mandate=_current_mandate(user),
        )
        .select_related("customer", "collection_officer")
        .only(*SHEET_COLUMNS)
        .order_by("-dpd", "loan_number")
    )


@dataclass(frozen=True)
class SheetTotals:
    count: int
    amount_due: Decimal
    arrears: Decimal


def sheet_totals(*, user: User, filters: SheetFilters) -> SheetTotals:
    """Count, amount due and arrears of the whole filtered sheet.

    One aggregate per disjoint part of the sheet (overdue; due and not overdue; paid on
    the date and neither), each a range of one of the sheet's indexes read from the
    index alone (``LoanAccount.Meta.indexes``): a branch of 100,000 loans is not read
    row by row on every page."""
    base = _sheet_filtered(user=user, filters=filters, parts=False)
    count, amount_due, arrears = 0, ZERO, ZERO
    for part in _sheet_parts(filters.business_date):
        figures = base.filter(part).aggregate(
            count=Count("*"),
            arrears=Sum(_arrears()),
            due_now=Sum("next_due_amount", filter=Q(next_due_date__lte=filters.business_date)),
        )
        count += figures["count"]
        arrears += figures["arrears"] or ZERO
        amount_due += (figures["arrears"] or ZERO) + (figures["due_now"] or ZERO)
    return SheetTotals(count, amount_due, arrears)


def _sheet_parts(day: datetime.date) -> list[Q]:
    """The sheet's rows in three disjoint parts (``dpd`` is never negative): overdue; not
    overdue and due on or before ``day``; neither but paid on ``day``."""
    not_due = Q(next_due_date__gt=day) | Q(next_due_date__isnull=True)
    return [
        Q(dpd__gt=0),
        Q(dpd=0, next_due_date__lte=day),
        Q(not_due, dpd=0, last_payment_date=day),
    ]


def _sheet_filtered(*, user: User, filters: SheetFilters, parts: bool = True) -> QuerySet:
    if not can_see_branch(user, filters.branch_id):
        raise SheetBranchNotFound("No such branch that you may see.")
    loans = scope_queryset(LoanAccount.objects.all(), user).filter(
        branch_id=filters.branch_id, status=LoanAccount.Status.ACTIVE
    )
    if parts:
        loans = loans.filter(reduce(operator.or_, _sheet_parts(filters.business_date)))
    if filters.bucket:
        loans = loans.filter(bucket=filters.bucket)
    if filters.collector == UNASSIGNED:
        loans = loans.filter(collection_officer__isnull=True)
    elif filters.collector:
        loans = loans.filter(collection_officer_id=int(filters.collector))
    return loans


def _arrears():
    return ExpressionWrapper(
        F("overdue_principal") + F("overdue_interest") + F("overdue_charges"),
        output_field=_MONEY,
    )


def _amount_due(day: datetime.date):
    """Arrears plus the next instalment when it falls due on or before ``day``."""
    due_now = Case(
        When(next_due_date__lte=day, then=F("next_due_amount")),
        default=Value(ZERO),
        output_field=_MONEY,
    )
    return ExpressionWrapper(_arrears() + due_now, output_field=_MONEY)


# --- A page's rows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    """A payment the branch recorded for the loan on the sheet's date."""

    txn_id: str
    receipt_number: str
    amount: Decimal
    mode: str
    status: str

    @property
    def counts(self) -> bool:
        return self.status in COLLECTED_STATUSES


@dataclass
class SheetRow:
    """A loan on the sheet and what is shown with it, worked out once per row (a page
    renders each several times)."""

    loan: LoanAccount
    co_borrowers: list[str] = field(default_factory=list)
    mandate_status: str = ""
    collections: list[Collection] = field(default_factory=list)
    collected: list[Collection] = field(init=False)
    not_counted: list[Collection] = field(init=False)  # failed or reversed: still to collect
    bucket_label: str = field(init=False)
    collector_name: str = field(init=False)

    def __post_init__(self) -> None:
        self.collected = [c for c in self.collections if c.counts]
        self.not_counted = [c for c in self.collections if not c.counts]
        self.bucket_label = BUCKET_LABELS.get(self.loan.bucket, self.loan.bucket)
        officer = self.loan.collection_officer
        self.collector_name = (officer.get_full_name() or officer.username) if officer else ""


@dataclass(frozen=True)
class DayCollections:
    """The branch's payments of the day by loan id; ``available`` is False when DynamoDB
    could not be read (the sheet is then shown without them, and says so)."""

    by_loan: dict[int, list[Collection]]
    available: bool = True


def day_collections(*, user: User, branch_id: int, business_date: datetime.date) -> DayCollections:
    """Every payment the branch recorded on the date, by loan id (oldest first): the
    ``branch_day`` partition (the branch's own, so all of it is the user's to see once the
    branch is), read with only what the sheet shows and taken as DynamoDB sends it
    (``dynamo.query``): a busy day's few hundred items cost no model per item."""
    if not can_see_branch(user, branch_id):
        raise SheetBranchNotFound("No such branch that you may see.")
    by_loan: dict[int, list[Collection]] = defaultdict(list)
    items = query_partition(
        table=TransactionItem.Meta.table_name,
        index=TransactionItem.by_branch_day.Meta.index_name,
        key_name="branch_day",
        key_value=branch_day_key(branch_id, business_date),
        attributes=DAY_ATTRIBUTES,
    )
    try:
        for raw in items:
            receipt = raw.get("receipt_number") or {}
            by_loan[int(raw["loan_id"]["N"])].append(
                Collection(
                    txn_id=raw["txn_id"]["S"],
                    receipt_number=receipt.get("S", ""),
                    amount=from_paise(int(raw["amount_paise"]["N"])),
                    mode=raw["mode"]["S"],
                    status=raw["status"]["S"],
                )
            )
    except (BotoCoreError, ClientError) as exc:
        if not is_unavailable(exc):
            raise
        logger.warning("collection sheet without the day's payments: %s", exc)
        return DayCollections({}, available=False)
    for collections in by_loan.values():
        collections.sort(key=lambda c: c.txn_id)  # ULIDs: in the order they were taken
    return DayCollections(dict(by_loan))


def sheet_rows(
    *, user: User, loans: Iterable[LoanAccount], collections: DayCollections
) -> list[SheetRow]:
    """The rows of a page of ``sheet_loans`` (whose query brought each loan's co-borrowers
    and current mandate): no query of their own, no DynamoDB read (``collections`` is the
    day's)."""
    return [_sheet_row(loan, collections) for loan in loans]


def _sheet_row(loan: LoanAccount, collections: DayCollections) -> SheetRow:
    status = loan.current_mandate
    return SheetRow(
        loan=loan,
        co_borrowers=loan.co_borrower_names or [],
        mandate_status=Mandate.Status(status).label if status else "",
        collections=collections.by_loan.get(loan.pk, []),
    )


def _co_borrower_names(user: User) -> ArraySubquery:
    """The loan's co-borrowers' names, a guarantor marked so, in the order they were added
    (the loan's own rows, scoped as every read is)."""
    shown = Case(
        When(role=CoBorrower.Role.CO_BORROWER, then=F("customer__name")),
        default=Concat(F("customer__name"), Value(" (guarantor)")),
        output_field=CharField(),
    )
    return ArraySubquery(
        scope_queryset(CoBorrower.objects.filter(loan_id=OuterRef("pk")), user)
        .order_by("id")
        .values(shown=shown)
    )


def _current_mandate(user: User) -> Subquery:
    """The status of the loan's current mandate: the first status in
    ``MANDATE_PRECEDENCE`` (the active one, else a suspended one, else the one in progress,
    else one that ended), the newest of it; None when the loan has none."""
    rank = Case(
        *(When(status=status, then=Value(n)) for n, status in enumerate(MANDATE_PRECEDENCE)),
        default=Value(len(MANDATE_PRECEDENCE)),
        output_field=IntegerField(),
    )
    return Subquery(
        mandates_visible(user=user)
        .filter(loan_id=OuterRef("pk"))
        .order_by(rank, "-id")
        .values("status")[:1]
    )


def sheet_rows_all(
    *, user: User, loans: QuerySet[LoanAccount], collections: DayCollections
) -> Iterator[SheetRow]:
    """Every row of the filtered sheet (the export, the print), read a chunk at a time."""
    for loan in loans.iterator(chunk_size=EXPORT_CHUNK):
        yield _sheet_row(loan, collections)


# --- The export -------------------------------------------------------------------------

EXPORT_HEADER = [
    "Loan number",
    "Customer",
    "Mobile",
    "Co-borrowers",
    "Collection officer",
    "Next due date",
    "Amount due",
    "Arrears",
    "DPD",
    "Bucket",
    "Mandate",
    "Last payment date",
    "Last payment amount",
    "Collected today",
    "Receipt numbers",
]


def sheet_export_rows(rows: Iterable[SheetRow]) -> Iterator[list[Any]]:
    """The sheet as spreadsheet rows, the header first: money as Decimal, dates as dates
    (``core.spreadsheets`` keeps text from ever being a formula)."""
    yield EXPORT_HEADER
    for row in rows:
        loan = row.loan
        collected = row.collected
        yield [
            loan.loan_number,
            loan.customer.name,
            loan.customer.mobile,
            ", ".join(row.co_borrowers),
            row.collector_name,
            loan.next_due_date,
            loan.amount_due,
            loan.arrears,
            loan.dpd,
            row.bucket_label,
            row.mandate_status,
            loan.last_payment_date,
            loan.last_payment_amount if loan.last_payment_date else None,
            sum((c.amount for c in collected), ZERO) if collected else None,
            ", ".join(c.receipt_number for c in collected if c.receipt_number),
        ]
