"""Writes of the branch desk: collect a payment (the same ingestion as the API, a receipt
number from the branch's series) and show a receipt (a reprint is marked and audited).

The receipt series is per branch and financial year. Its row is locked in the transaction
that calls the ingestion and records the receipt, so two collects at one branch take
consecutive numbers and a refused payment rolls its number back: no gaps from refusals.
The idempotency key comes from the form: a second submission of the same form (double
click, refresh, a retry after a timeout) finds the first's receipt, or, when the first's
Postgres commit was lost after DynamoDB accepted the payment, gets the ingestion's replay
and records the receipt from it.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, replace
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import Branch
from audit.services import audit_record
from core.money import PAISA, inr
from loans.models import LoanAccount
from payments.exceptions import DuplicateReceipt, IdempotencyKeyReused, LoanNotFound
from payments.services import (
    IngestResult,
    PaymentInput,
    business_date_for,
    ingest_outcome,
    payment_ingest,
)

from .exceptions import CashLimitExceeded, CollectRefused, DuplicateNotConfirmed
from .models import DeskReceipt, ReceiptSeries
from .selectors import collect_preview, loan_for_collect, possible_duplicates

SOURCE = "desk"  # the ingestion's source of every desk payment (its idempotency namespace)
MAX_SKIPS = 20  # receipt numbers held in DynamoDB by payments whose desk record was lost
CHEQUE_NUMBER = re.compile(r"^\d{6}$")
UPI_REFERENCE = re.compile(r"^\d{12}$")  # the UPI transaction's RRN
NEFT_UTR = re.compile(r"^[A-Z0-9]{16,22}$")
CHEQUE_VALIDITY = datetime.timedelta(days=90)  # RBI: a cheque is stale after three months
MODE_FIELDS = {
    DeskReceipt.Mode.CHEQUE: ("cheque_number", "cheque_bank", "cheque_date"),
    DeskReceipt.Mode.UPI: ("upi_reference",),
    DeskReceipt.Mode.NEFT: ("neft_utr",),
}
DETAIL_FIELDS = ("cheque_number", "cheque_bank", "cheque_date", "upi_reference", "neft_utr")


@dataclass(frozen=True)
class CollectInput:
    """A payment as entered at the desk."""

    loan_number: str
    amount: Decimal
    mode: str
    cheque_number: str = ""
    cheque_bank: str = ""
    cheque_date: datetime.date | None = None
    upi_reference: str = ""
    neft_utr: str = ""
    remarks: str = ""

    def normalised(self) -> CollectInput:
        """Only the details of its mode (the others emptied), trimmed and upper-cased."""
        wanted = MODE_FIELDS.get(self.mode, ())
        values = {}
        for name in DETAIL_FIELDS:
            value = getattr(self, name)
            if name not in wanted:
                value = None if name == "cheque_date" else ""
            elif isinstance(value, str):
                value = value.strip().upper() if name != "cheque_bank" else value.strip()
            values[name] = value
        return replace(
            self,
            loan_number=self.loan_number.strip().upper(),
            remarks=self.remarks.strip(),
            **values,
        )


# --- Numbers ----------------------------------------------------------------------------


def financial_year(day: datetime.date) -> str:
    """India's financial year (April to March) of a date: ``2026-27``."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def receipt_number(branch_code: str, year: str, sequence: int) -> str:
    return f"{branch_code}/{year}/{sequence:06d}"


def receipt_number_parts(number: str) -> tuple[str, str, int] | None:
    """(branch code, financial year, sequence) of a number of the desk's format."""
    match = re.match(r"^([A-Z0-9-]+)/(\d{4}-\d{2})/(\d{6,})$", number)
    return (match[1], match[2], int(match[3])) if match else None


def _series_locked(branch_id: int, year: str) -> ReceiptSeries:
    """The series row of a branch and year, locked (made on its first use)."""
    series = ReceiptSeries.objects.select_for_update().filter(
        branch_id=branch_id, financial_year=year
    )
    found = series.first()
    if found is None:
        ReceiptSeries.objects.bulk_create(
            [ReceiptSeries(branch_id=branch_id, financial_year=year)], ignore_conflicts=True
        )
        found = series.get()
    return found


def _series_take(branch: Branch, business_date: datetime.date) -> tuple[ReceiptSeries, str]:
    """The next number of the branch's series (locked; the caller saves the series)."""
    series = _series_locked(branch.pk, financial_year(business_date))
    return series, receipt_number(branch.code, series.financial_year, series.next_number)


def _series_advance_past(branch: Branch, number: str, current: ReceiptSeries) -> None:
    """Make sure the series of ``number``'s year never gives ``number`` (or one before it)
    again. ``current`` is the locked series of this collect, saved here."""
    parts = receipt_number_parts(number)
    if parts is None or parts[0] != branch.code:
        current.save(update_fields=["next_number"])
        return
    _code, year, sequence = parts
    series = current if year == current.financial_year else _series_locked(branch.pk, year)
    series.next_number = max(series.next_number, sequence + 1)
    series.save(update_fields=["next_number"])
    if series is not current:
        current.save(update_fields=["next_number"])


# --- Checks -----------------------------------------------------------------------------


def collector_label(user) -> str:
    """How the payment names its collector (the DCR sums by it)."""
    name = user.get_full_name().strip()
    return f"{name} ({user.get_username()})" if name else user.get_username()


def cash_limit_problem(*, collect: CollectInput, branch: Branch) -> str | None:
    if collect.mode == DeskReceipt.Mode.CASH and collect.amount >= branch.cash_receipt_limit:
        return (
            f"Cash receipts at {branch.code} must be below {inr(branch.cash_receipt_limit)} "
            "(Income Tax s.269ST bars ₹2 lakh or more in cash): take this payment by cheque, "
            "UPI or NEFT."
        )
    return None


def collect_problems(*, collect: CollectInput, branch: Branch) -> dict[str, str]:
    """What is wrong with a payment as entered, by field (the form shows them; the service
    refuses with the first). ``collect`` is normalised."""
    problems: dict[str, str] = {}
    amount = collect.amount
    if amount is None or amount <= 0:
        problems["amount"] = "Enter an amount above zero."
    elif amount != amount.quantize(PAISA):
        problems["amount"] = "Enter rupees and at most two digits of paise."
    elif amount > Decimal(settings.PAYMENTS_MAX_AMOUNT):
        problems["amount"] = f"One payment can be at most {inr(settings.PAYMENTS_MAX_AMOUNT)}."
    elif message := cash_limit_problem(collect=collect, branch=branch):
        problems["amount"] = message
    if collect.mode not in DeskReceipt.Mode.values:
        problems["mode"] = "Choose cash, cheque, UPI or NEFT."
    elif collect.mode == DeskReceipt.Mode.CHEQUE:
        today = timezone.localdate()
        if not CHEQUE_NUMBER.match(collect.cheque_number):
            problems["cheque_number"] = "Enter the cheque's 6-digit number."
        if not collect.cheque_bank:
            problems["cheque_bank"] = "Enter the bank the cheque is drawn on."
        if collect.cheque_date is None:
            problems["cheque_date"] = "Enter the date on the cheque."
        elif collect.cheque_date > today:
            problems["cheque_date"] = "A post-dated cheque cannot be receipted before its date."
        elif collect.cheque_date < today - CHEQUE_VALIDITY:
            problems["cheque_date"] = "The cheque is older than three months (stale)."
    elif collect.mode == DeskReceipt.Mode.UPI and not UPI_REFERENCE.match(collect.upi_reference):
        problems["upi_reference"] = "Enter the UPI reference (the 12-digit RRN)."
    elif collect.mode == DeskReceipt.Mode.NEFT and not NEFT_UTR.match(collect.neft_utr):
        problems["neft_utr"] = "Enter the UTR: 16 to 22 letters and digits."
    return problems


def _refuse(problems: dict[str, str], *, collect: CollectInput, branch: Branch) -> None:
    if message := cash_limit_problem(collect=collect, branch=branch):
        raise CashLimitExceeded(message, field="amount")
    field, message = next(iter(problems.items()))
    raise CollectRefused(message, field=field)


# --- Collect ----------------------------------------------------------------------------


@transaction.atomic
def desk_collect(
    *,
    collect: CollectInput,
    idempotency_key: str,
    duplicate_confirmed: bool,
    actor,
    loan: LoanAccount | None = None,
) -> DeskReceipt:
    """Record a payment collected at the desk and its receipt, once per ``idempotency_key``
    (a form's): a second call with the key returns the first's receipt.

    ``loan`` is the loan as the caller read it for ``actor`` with ``loan_for_collect`` (the
    collect form has it already); it is read here when not given.

    Checks first (loan in scope and active, the amount, the mode's details, the branch's
    cash limit, a confirmed duplicate), then, under the series' row lock, the number, the
    ingestion and the receipt in this one Postgres transaction. A key that has its receipt
    already (a resubmission, or a twin that was in flight and has committed by the time
    the lock is had) gets that receipt, even when the checks would now refuse: the loan
    may be closed by this very payment."""
    collect = collect.normalised()
    if loan is None or loan.loan_number != collect.loan_number:
        try:
            loan = loan_for_collect(user=actor, loan_number=collect.loan_number)
        except LoanNotFound:
            if existing := _receipt_of_key(idempotency_key):
                return existing
            raise
    branch = loan.branch
    problems = collect_problems(collect=collect, branch=branch)
    refusing = problems or loan.status != LoanAccount.Status.ACTIVE
    if refusing and (existing := _receipt_of_key(idempotency_key)):
        return existing
    if problems:
        _refuse(problems, collect=collect, branch=branch)
    if loan.status != LoanAccount.Status.ACTIVE:
        raise CollectRefused(
            f"Loan {loan.loan_number} is {loan.get_status_display().lower()}: it takes no "
            "payments.",
            field="loan",
        )
    business_date = business_date_for(branch, timezone.now())
    series, number = _series_take(branch, business_date)
    existing = _receipt_of_key(idempotency_key)
    if existing is not None:
        return existing
    warned = _duplicate_check(
        loan=loan, collect=collect, key=idempotency_key, confirmed=duplicate_confirmed, user=actor
    )
    preview = collect_preview(loan=loan, amount=collect.amount)
    result = _ingest_numbered(
        payment=PaymentInput(
            loan_number=loan.loan_number,
            amount=collect.amount,
            mode=collect.mode,
            business_date=business_date,
            receipt_number=number,
            collector=collector_label(actor),
        ),
        series=series,
        branch=branch,
        key=idempotency_key,
        actor=actor,
    )
    body = result.body
    _series_advance_past(branch, body["receipt_number"], series)
    return DeskReceipt.objects.create(
        receipt_number=body["receipt_number"],
        txn_id=body["txn_id"],
        loan=loan,
        branch=branch,
        business_date=datetime.date.fromisoformat(body["business_date"]),
        amount=Decimal(body["amount"]),
        mode=body["mode"],
        cheque_number=collect.cheque_number,
        cheque_bank=collect.cheque_bank,
        cheque_date=collect.cheque_date,
        upi_reference=collect.upi_reference,
        neft_utr=collect.neft_utr,
        remarks=collect.remarks,
        collector=actor,
        idempotency_key=idempotency_key,
        duplicate_warned=warned,
        duplicate_confirmed_by=actor if warned else None,
        allocation=preview.as_json(),
    )


def _receipt_of_key(key: str) -> DeskReceipt | None:
    return DeskReceipt.objects.filter(idempotency_key=key).first()


def _duplicate_check(*, loan, collect: CollectInput, key: str, confirmed: bool, user) -> bool:
    """Whether a possible duplicate was there (and so confirmed); refuses when it was not
    confirmed. The payment this very form sent before (a lost commit) is no duplicate."""
    duplicates = possible_duplicates(loan=loan, amount=collect.amount, user=user)
    if duplicates:
        own = ingest_outcome(idempotency_key=key, source=SOURCE)
        if own is not None:
            duplicates = [d for d in duplicates if d["txn_id"] != own.body["txn_id"]]
    if duplicates and not confirmed:
        latest = duplicates[0]
        raise DuplicateNotConfirmed(
            f"{inr(collect.amount)} was already received on {loan.loan_number} at "
            f"{timezone.localtime(latest['created']):%H:%M} "
            f"(receipt {latest['receipt_number'] or latest['txn_id']}). Tick the box if this "
            "is another payment.",
            field="confirm_duplicate",
        )
    return bool(duplicates)


def _ingest_numbered(
    *, payment: PaymentInput, series: ReceiptSeries, branch: Branch, key: str, actor
) -> IngestResult:
    """The ingestion with the series' number. A number DynamoDB already holds (a payment
    whose desk record was lost, or one sent with that number through the API) is skipped;
    a key that was used with another body (this form's own payment, recorded in DynamoDB
    with an earlier number) gets that payment's first response."""
    for _ in range(MAX_SKIPS):
        try:
            return payment_ingest(
                payment=payment, idempotency_key=key, principal=actor, source=SOURCE
            )
        except DuplicateReceipt:
            series.next_number += 1
            payment = replace(
                payment,
                receipt_number=receipt_number(
                    branch.code, series.financial_year, series.next_number
                ),
            )
        except IdempotencyKeyReused:
            outcome = ingest_outcome(idempotency_key=key, source=SOURCE)
            if outcome is None:
                raise
            return outcome
    raise CollectRefused("No free receipt number was found; try again.", field="amount")


# --- Show a receipt ---------------------------------------------------------------------


# The confirmation's own showing of its receipt: the redirect after confirming carries a
# token bound to the receipt and the user who confirmed; with it, and within this long of
# the confirmation, the page (its reloads, the same form sent again, its PDF) is the
# original. Every other showing is a reprint.
ISSUE_WINDOW = datetime.timedelta(minutes=15)
_ISSUE_SALT = "desk.receipt.issued"


def receipt_issue_token(*, receipt: DeskReceipt, actor) -> str:
    """The token of the confirmation's redirect to its receipt (stable: a reload, or the
    same form sent again, lands on the same address)."""
    return signing.Signer(salt=_ISSUE_SALT).signature(f"{receipt.pk}:{actor.pk}")


def _is_issue(receipt: DeskReceipt, actor, token: str) -> bool:
    return (
        bool(token)
        and receipt.collector_id == actor.pk
        and timezone.now() - receipt.created_at <= ISSUE_WINDOW
        and constant_time_compare(token, receipt_issue_token(receipt=receipt, actor=actor))
    )


@transaction.atomic
def receipt_show(*, receipt: DeskReceipt, actor, fmt: str = "html", issue_token: str = "") -> bool:
    """Count one showing of a receipt (the page or the PDF); True when it is a reprint,
    which is counted and audited.

    Not a reprint: the receipt's first showing ever, and a showing with the confirmation's
    token (``receipt_issue_token``) by the user who confirmed it, within ``ISSUE_WINDOW`` of
    the confirmation. A reprint: everything else (the Reprint button, the receipt found by
    number or opened from the list, another user, a later reload)."""
    first = DeskReceipt.objects.filter(pk=receipt.pk, first_shown_at__isnull=True).update(
        first_shown_at=timezone.now()
    )
    if first or _is_issue(receipt, actor, issue_token):
        return False
    DeskReceipt.objects.filter(pk=receipt.pk).update(reprint_count=F("reprint_count") + 1)
    receipt.refresh_from_db(fields=["reprint_count"])
    audit_record(
        instance_or_entity=receipt,
        action="update",  # the reprint count; the remarks say it was a reprint
        changes={"reprint_count": [receipt.reprint_count - 1, receipt.reprint_count]},
        remarks=f"Receipt {receipt.receipt_number} shown again ({fmt}): marked DUPLICATE.",
        actor=actor,
    )
    return True
