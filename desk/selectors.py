"""Reads of the branch desk: the loan to collect on (found by number or mobile), what a
payment would pay (the posting's own ``allocate``, read only), possible duplicates, and the
receipts; every one takes the user and goes through the one scoping function."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from accounts.scoping import scope_queryset
from loans.models import Instalment, LoanAccount
from loans.selectors import loan_accounts_visible
from payments.allocation import allocate
from payments.exceptions import LoanNotFound, StoreUnavailable, TransactionNotFound
from payments.selectors import (
    posting_allocation_rows,
    postings_visible,
    transaction_for_user,
    transactions_for_loan,
)
from payments.services import TxnStatus

from .exceptions import ReceiptNotFound
from .models import DeskReceipt

ZERO = Decimal("0.00")
DUPLICATE_WINDOW = datetime.timedelta(minutes=10)
FIND_LIMIT = 20
LOAN_NUMBER = re.compile(r"^LN\d{10}$", re.IGNORECASE)
MOBILE = re.compile(r"^[6-9]\d{9}$")


# --- The loan ---------------------------------------------------------------------------


def loan_for_collect(*, user, loan_number: str) -> LoanAccount:
    """The loan with this number among those the user may see (else ``LoanNotFound``)."""
    number = (loan_number or "").strip().upper()
    loan = loan_accounts_visible(user=user).filter(loan_number=number).first() if number else None
    if loan is None:
        raise LoanNotFound(f"No loan account {number} that you may see.")
    return loan


def mobile_digits(text: str) -> str | None:
    """A mobile number as typed (spaces, dashes, +91, 0091 or a leading 0) as its 10
    digits, or None when it is not one."""
    digits = re.sub(r"[\s\-()]", "", text or "")
    digits = re.sub(r"^(\+91|0091|91(?=\d{10}$)|0(?=\d{10}$))", "", digits)
    return digits if MOBILE.match(digits) else None


def loans_find(*, user, query: str) -> list[LoanAccount]:
    """Loans by loan number (exact) or the borrower's mobile, in the user's scope; active
    loans first, at most ``FIND_LIMIT``."""
    term = (query or "").strip()
    loans = loan_accounts_visible(user=user)
    if LOAN_NUMBER.match(term):
        loans = loans.filter(loan_number=term.upper())
    elif mobile := mobile_digits(term):
        loans = loans.filter(customer__mobile=mobile)
    else:
        return []
    active_first = sorted(loans[:FIND_LIMIT], key=lambda loan: loan.status != "ACTIVE")
    return active_first


# --- The preview ------------------------------------------------------------------------


@dataclass
class Preview:
    """What a payment would pay: per instalment (oldest first) and in all."""

    amount: Decimal
    rows: list[dict[str, Any]] = field(default_factory=list)
    excess: Decimal = ZERO

    def total(self, component: str) -> Decimal:
        return sum((row[component] for row in self.rows), ZERO)

    @property
    def charges(self) -> Decimal:
        return self.total("charges")

    @property
    def interest(self) -> Decimal:
        return self.total("interest")

    @property
    def principal(self) -> Decimal:
        return self.total("principal")

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": [
                {
                    **{k: str(v) for k, v in row.items() if k != "due_date"},
                    "due_date": row["due_date"].isoformat(),
                }
                for row in self.rows
            ],
            "excess": str(self.excess),
        }


def collect_preview(*, loan: LoanAccount, amount: Decimal) -> Preview:
    """The allocation the posting would make now (``payments.allocation.allocate`` on the
    loan's unpaid instalments, oldest first), without writing anything."""
    instalments = list(
        Instalment.objects.filter(loan=loan)
        .exclude(status=Instalment.Status.PAID)
        .order_by("due_date", "number")
    )
    allocations, excess = allocate(amount, instalments)
    due_dates = {inst.pk: inst.due_date for inst in instalments}
    rows = [
        {
            "number": a.number,
            "due_date": due_dates[a.instalment_id],
            "charges": a.charges,
            "interest": a.interest,
            "principal": a.principal,
            "total": a.total,
        }
        for a in allocations
    ]
    return Preview(amount=amount, rows=rows, excess=excess)


def preview_from_json(data: dict[str, Any], amount: Decimal) -> Preview:
    rows = [
        {
            **{k: Decimal(v) for k, v in row.items() if k not in ("due_date", "number")},
            "number": int(row["number"]),
            "due_date": datetime.date.fromisoformat(row["due_date"]),
        }
        for row in data.get("rows", [])
    ]
    return Preview(amount=amount, rows=rows, excess=Decimal(data.get("excess", "0.00")))


def possible_duplicates(
    *, loan: LoanAccount, amount: Decimal, user, exclude_txn_ids: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Payments of the same amount on the loan in the last ten minutes, from any source (the
    desk, the field app, the API), unless failed or reversed."""
    since = timezone.now() - DUPLICATE_WINDOW
    page = transactions_for_loan(loan=loan, user=user, limit=25, since=since)
    return [
        row
        for row in page.rows
        if Decimal(row["amount"]) == amount
        and row["status"] not in (TxnStatus.FAILED, TxnStatus.REVERSED)
        and row["txn_id"] not in exclude_txn_ids
    ]


# --- Receipts ---------------------------------------------------------------------------


def receipts_visible(*, user) -> QuerySet[DeskReceipt]:
    queryset = DeskReceipt.objects.select_related(
        "loan", "loan__customer", "branch", "collector", "duplicate_confirmed_by"
    )
    return scope_queryset(queryset, user)


def receipt_for_user(*, user, receipt_id: int) -> DeskReceipt:
    receipt = receipts_visible(user=user).filter(pk=receipt_id).first()
    if receipt is None:
        raise ReceiptNotFound("No such receipt that you may see.")
    return receipt


def receipt_by_number(*, user, number: str) -> DeskReceipt | None:
    """A receipt by its number as typed (case and surrounding spaces ignored); a number
    shared by two branches' series cannot be, as each carries its branch's code."""
    number = (number or "").strip().upper()
    if not number:
        return None
    return receipts_visible(user=user).filter(receipt_number=number).first()


@dataclass
class ReceiptState:
    """What a receipt shows beyond its own row: the payment's status in DynamoDB and what
    it paid (the posting's split, or the preview's, marked provisional)."""

    status: str
    failure_reason: str
    paid: Preview
    provisional: bool
    posted_at: datetime.datetime | None = None


def receipt_state(*, receipt: DeskReceipt, user) -> ReceiptState:
    try:
        txn = transaction_for_user(txn_id=receipt.txn_id, user=user)
        status, reason, posted_at = txn["status"], txn["failure_reason"] or "", txn["posted"]
    except StoreUnavailable:
        status, reason, posted_at = "UNKNOWN", "The payments store cannot be reached.", None
    except TransactionNotFound:
        status, reason, posted_at = "UNKNOWN", "The payment is not found.", None
    posting = postings_visible(user=user).filter(txn_id=receipt.txn_id).first()
    if posting is not None:
        if posting.reversed_at is not None:  # DynamoDB is told after the reversal commits
            status = TxnStatus.REVERSED
        rows = posting_allocation_rows(posting)
        paid = Preview(amount=posting.amount, rows=rows, excess=posting.excess)
        return ReceiptState(status, reason, paid, False, posted_at)
    return ReceiptState(
        status, reason, preview_from_json(receipt.allocation, receipt.amount), True, posted_at
    )
