"""A book brought in from another system (``imports``): its payment history written to
DynamoDB as it happened, and the opening balance of each loan posted once, as migrated.

- History (``payment_history_record``): a past payment becomes a transaction with its
  original business date, time and receipt number, status POSTED and source ``migrated``:
  it is never queued for posting (the opening balances already hold its effect), while
  statements, the DCR of its day and the duplicate-receipt check see it. Its id is a ULID
  of its time whose random part comes from the branch and receipt number, so the same
  payment always has the same id: it and its receipt key are written in one
  TransactWriteItems, each on condition that it is absent, and a second import of it finds
  both there (unchanged).
- Opening balance (``loan_opening_balance_post``): a ``Posting`` of mode MIGRATED for what
  the other system says was paid, allocated to the schedule oldest first, so that the
  instalments' unpaid dues match the outstanding figures at the cut-over date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from ulid import ULID

from core.clock import iso
from core.errors import ApplicationError, Conflict
from core.money import to_paise
from dynamo.transactions import transact_write
from loans.models import Instalment, LoanAccount, LoanCharge
from loans.services import loan_charge_raise, loan_dues_refresh

from ..ddb_models import TransactionItem, UniqueKeyItem, branch_day_key
from ..models import Posting
from ._common import TxnStatus, _store_call

MIGRATED = "migrated"  # the source of a transaction brought in, and the mode of its posting
MIGRATED_MODE = "MIGRATED"
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class HistoricalPayment:
    loan: LoanAccount
    receipt_number: str
    business_date: dt.date
    paid_at: dt.datetime  # aware
    amount: Decimal
    mode: str
    collector: str = ""
    external_reference: str = ""


def history_txn_id(branch_id: int, receipt_number: str, paid_at: dt.datetime) -> str:
    """The same payment's id at every import: its time, and a hash of its receipt key."""
    digest = hashlib.sha256(f"{branch_id}#{receipt_number.upper()}".encode()).digest()
    millis = int(paid_at.timestamp() * 1000)
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10]))


def _receipt_key(branch_id: int, receipt_number: str) -> str:
    return f"receipt#{branch_id}#{receipt_number.strip().upper()}"


def payment_history_record(*, payment: HistoricalPayment, write: bool = True) -> str:
    """Record a past payment (``write`` False: only check it): "created", or "unchanged"
    when this very payment is there already. Raises ``Conflict`` when its receipt number
    belongs to another transaction of the branch."""
    loan = payment.loan
    txn_id = history_txn_id(loan.branch_id, payment.receipt_number, payment.paid_at)
    key = _receipt_key(loan.branch_id, payment.receipt_number)
    if not write:
        return _existing(_holder(key), txn_id, payment)
    txn = TransactionItem(
        txn_id,
        branch_day=branch_day_key(loan.branch_id, payment.business_date),
        created_at=iso(payment.paid_at),
        loan_number=loan.loan_number,
        loan_id=loan.pk,
        branch_id=loan.branch_id,
        business_date=payment.business_date.isoformat(),
        amount_paise=to_paise(payment.amount),
        mode=payment.mode,
        status=TxnStatus.POSTED,
        receipt_number=payment.receipt_number,
        collector=payment.collector or None,
        external_reference=payment.external_reference or None,
        source=MIGRATED,
        posted_at=iso(payment.paid_at),
    )

    def build(tw) -> None:
        tw.save(txn, condition=TransactionItem.txn_id.does_not_exist())
        tw.save(
            UniqueKeyItem(key, txn_id=txn_id, created_at=iso(payment.paid_at)),
            condition=UniqueKeyItem.unique_key.does_not_exist(),
        )

    try:
        transact_write(build)
    except TransactWriteError:
        holder = _holder(key)
        if holder is None:
            raise
        return _existing(holder, txn_id, payment)
    return "created"


def _holder(key: str) -> UniqueKeyItem | None:
    try:
        return _store_call(UniqueKeyItem.get, key, consistent_read=True)
    except DoesNotExist:
        return None


def _existing(holder, txn_id: str, payment: HistoricalPayment) -> str:
    if holder is None:
        return "created"
    if holder.txn_id != txn_id:
        raise Conflict(
            f"Receipt {payment.receipt_number} of this branch is already recorded "
            f"(transaction {holder.txn_id}).",
            code="duplicate_receipt",
            field="receipt_number",
        )
    txn = _store_call(TransactionItem.get, txn_id, consistent_read=True)
    if txn.amount_paise != to_paise(payment.amount) or txn.loan_number != payment.loan.loan_number:
        raise Conflict(
            f"Receipt {payment.receipt_number} was brought in before with another loan or amount.",
            code="duplicate_receipt",
            field="receipt_number",
        )
    return "unchanged"


# --- Opening balances -------------------------------------------------------------------


class OpeningBalanceRefused(ApplicationError):
    code = "opening_balance_refused"


def opening_txn_id(loan: LoanAccount) -> str:
    """The id of a loan's opening-balance posting (26 characters, as a ULID; one a loan)."""
    return f"MIGRATED{loan.pk:018d}"


@transaction.atomic
def loan_opening_balance_post(
    *, loan_id: int, as_of: dt.date, principal: Decimal, interest: Decimal, charges: Decimal
) -> str:
    """Make the loan's schedule say what the other system says it owes at ``as_of``:
    ``principal`` outstanding (all instalments), ``interest`` and ``charges`` overdue
    (instalments due on or before ``as_of``). What was paid is one posting of mode MIGRATED
    allocated oldest first (interest, then principal, of each instalment); charges owed are
    a charge of kind MIGRATED on the oldest unpaid instalment due by then. "created", or
    "unchanged" when this balance was brought in already; refused (``OpeningBalanceRefused``)
    when the loan has payments of this system, or the figures do not fit its schedule."""
    loan = LoanAccount.objects.select_for_update().get(pk=loan_id)
    instalments = list(Instalment.objects.filter(loan=loan).order_by("number"))
    due = [i for i in instalments if i.due_date <= as_of]
    paid_principal = loan.disbursed_amount - principal
    paid_interest = sum((i.interest_due for i in due), ZERO) - interest
    txn_id, charge_reference = opening_txn_id(loan), f"opening#{loan.loan_number}"
    posting = Posting.objects.filter(txn_id=txn_id).first()
    charge = LoanCharge.objects.filter(reference=charge_reference).first()
    if posting is not None or charge is not None:
        same = ((posting.principal, posting.interest) if posting else (ZERO, ZERO)) == (
            paid_principal,
            paid_interest,
        ) and (charge.total if charge else ZERO) == charges
        if not same:
            raise OpeningBalanceRefused(
                f"Loan {loan.loan_number}'s opening balance was brought in before with other "
                "figures.",
                field="outstanding_principal",
            )
        return "unchanged"
    _check_fits(loan, due, paid_principal, paid_interest, charges)
    if not (paid_principal or paid_interest or charges):
        return "unchanged"  # the schedule says it already: nothing paid, nothing charged
    allocations = _allocate(instalments, paid_principal, paid_interest)
    Instalment.objects.bulk_update(instalments, ["principal_paid", "interest_paid", "status"])
    if paid_principal + paid_interest > 0:
        Posting.objects.create(
            txn_id=txn_id,
            loan=loan,
            branch_id=loan.branch_id,
            business_date=as_of,
            mode=MIGRATED_MODE,
            amount=paid_principal + paid_interest,
            principal=paid_principal,
            interest=paid_interest,
            allocations=allocations,
        )
    if charges:
        oldest_unpaid = next((i for i in due if i.total_paid < i.total_due), due[-1])
        loan_charge_raise(
            loan=loan,
            instalment=oldest_unpaid,
            kind=LoanCharge.Kind.MIGRATED,
            amount=charges,
            gst_rate=ZERO,  # the other system's figure includes its GST
            reference=charge_reference,
            reason=f"Charges owed at the cut-over date {as_of:%d %b %Y}",
        )
    loan_dues_refresh(loan=loan)
    return "created"


def _check_fits(loan, due, paid_principal: Decimal, paid_interest: Decimal, charges) -> None:
    if Posting.objects.filter(loan=loan).exists():
        raise OpeningBalanceRefused(
            f"Loan {loan.loan_number} has payments here already: its balance is this system's.",
            field="loan_number",
        )
    if paid_principal < 0:
        raise OpeningBalanceRefused(
            f"The outstanding principal is above the disbursed {loan.disbursed_amount}.",
            field="outstanding_principal",
        )
    if paid_interest < 0:
        raise OpeningBalanceRefused(
            "The overdue interest is above the interest of the instalments due by the "
            f"cut-over date ({sum((i.interest_due for i in due), ZERO)}).",
            field="outstanding_interest",
        )
    if charges and not due:
        raise OpeningBalanceRefused(
            "Charges are owed but no instalment is due by the cut-over date.",
            field="outstanding_charges",
        )


def _allocate(instalments, paid_principal: Decimal, paid_interest: Decimal) -> list[dict]:
    """Set the instalments' paid amounts, oldest first; the posting's allocations."""
    allocations = []
    left = {"principal": paid_principal, "interest": paid_interest}
    for inst in instalments:
        parts = {}
        for component in ("interest", "principal"):
            take = min(left[component], getattr(inst, f"{component}_due"))
            setattr(inst, f"{component}_paid", take)
            left[component] -= take
            parts[component] = take
        inst.status = inst.derived_status
        if any(parts.values()):
            allocations.append(
                {
                    "instalment": inst.pk,
                    "number": inst.number,
                    "charges": "0.00",
                    "interest": str(parts["interest"]),
                    "principal": str(parts["principal"]),
                }
            )
    return allocations
