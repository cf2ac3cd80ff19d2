"""The loan ledger's side of posting: its maintenance switch, and the postings themselves,
made in one Postgres transaction for a batch of payments (loans locked, a posting unique per
txn_id, the oldest dues paid first). The queue's side (lease, mark) is ``posting``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from audit.services import audit_updates_add
from core.money import from_paise
from loans.models import Instalment, LoanAccount
from loans.services import loan_dues_set

from ..allocation import allocate
from ..ddb_models import TransactionItem
from ..exceptions import LedgerSwitchRefused, LedgerUnavailable, PostingRefused
from ..models import LedgerSwitch, Posting
from ..refdata import ledger_state

LOAN_FIELDS = LoanAccount._meta.concrete_fields
INSTALMENT_PAID_FIELDS = ["charges_paid", "interest_paid", "principal_paid", "status"]

# What one payment's posting gives: the posting and whether it is new, or why it was refused.
PostingResult = tuple[Posting, bool] | PostingRefused


def ledger_switch_problems(
    *, maintenance: bool, reason: str, current: LedgerSwitch | None
) -> dict[str, str]:
    """Why the switch cannot be set so, by field: switching maintenance on or off needs a
    reason of its own (not the one it had), and maintenance needs one while on."""
    reason = reason.strip()
    was_on, had_reason = (current.maintenance, current.reason) if current else (False, "")
    if maintenance != was_on and (not reason or reason == had_reason):
        return {"reason": "Say why you switch maintenance on or off."}
    if maintenance and not reason:
        return {"reason": "Say why the ledger is in maintenance."}
    return {}


@transaction.atomic
def ledger_switch_set(*, maintenance: bool, reason: str, actor) -> LedgerSwitch:
    """Switch ledger maintenance on or off, or give it another reason, under the row's lock.
    Audited by the change tracking; postings see it once it commits (the cached state gets a
    new version then)."""
    current = LedgerSwitch.objects.select_for_update().filter(pk=1).first()
    problems = ledger_switch_problems(maintenance=maintenance, reason=reason, current=current)
    if problems:
        (field, message), *_ = problems.items()
        raise LedgerSwitchRefused(message, field=field)
    switch = current or LedgerSwitch(pk=1)
    switch.maintenance, switch.reason = maintenance, reason.strip()
    switch.save()
    return switch


def _ledger_open() -> None:
    switch = ledger_state()  # cached: read by every posting, changed once in a while
    if switch.maintenance:
        raise LedgerUnavailable(f"The ledger is in maintenance: {switch.reason or 'no reason'}")


def ledger_post(*, txn: TransactionItem) -> tuple[Posting, bool]:
    """Post a transaction to its loan: (posting, True) when new, (posting, False) when it
    had been posted already; ``posting.loan`` is the loan with its customer. Raises
    ``PostingRefused`` for a loan that is not active."""
    result = ledger_post_many(txns=[txn])[txn.txn_id]
    if isinstance(result, PostingRefused):
        raise result
    return result


@transaction.atomic
def ledger_post_many(*, txns: list[TransactionItem]) -> dict[str, PostingResult]:
    """Post these transactions, in their order, in one transaction: by txn_id, (posting,
    True) when new, (posting, False) when posted already, or the ``PostingRefused`` of a
    payment on a loan that is not active (or gone). ``posting.loan`` is the loan with its
    customer. Allocation: oldest dues first; charges, interest, principal; a loan's
    payments one after the other, as if posted one by one.

    Six statements and one more a loan: the loans locked (in id order, so that two batches
    never deadlock on them), the postings looked for, the instalments of the loans to post
    to locked (all of them: the dues are recomputed from them, without reading them again),
    one update of the instalments paid, one insert of the postings, an update a loan, and
    one outbox write of the loans' audit events."""
    _ledger_open()
    loans = {
        loan.pk: loan
        for loan in LoanAccount.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk__in={int(txn.loan_id) for txn in txns})
        .order_by("pk")
    }
    posted = {
        posting.txn_id: posting
        for posting in Posting.objects.filter(txn_id__in=[txn.txn_id for txn in txns])
    }
    results: dict[str, PostingResult] = {}
    to_post = []
    for txn in txns:
        loan = loans.get(int(txn.loan_id))
        if txn.txn_id in results:
            continue
        if txn.txn_id in posted:
            existing = posted[txn.txn_id]
            existing.loan = loans.get(existing.loan_id) or existing.loan
            results[txn.txn_id] = (existing, False)
        elif loan is None:
            results[txn.txn_id] = PostingRefused(f"Loan {txn.loan_number} does not exist.")
        else:
            results[txn.txn_id] = None  # decided below, in order
            to_post.append((txn, loan))
    schedules: dict[int, list[Instalment]] = defaultdict(list)
    active = {loan.pk for _, loan in to_post if loan.status == LoanAccount.Status.ACTIVE}
    if active:
        for inst in (
            Instalment.objects.select_for_update()
            .filter(loan_id__in=active)
            .order_by("loan_id", "due_date", "number")
        ):
            schedules[inst.loan_id].append(inst)
    paid: dict[int, Instalment] = {}
    postings: list[Posting] = []
    changed: dict[int, set[str]] = defaultdict(set)
    before: dict[int, dict] = {}
    for txn, loan in to_post:
        if loan.status != LoanAccount.Status.ACTIVE:  # also closed by an earlier payment here
            status = loan.get_status_display().lower()
            results[txn.txn_id] = PostingRefused(f"Loan {loan.loan_number} is {status}.")
            continue
        if loan.pk not in before:
            before[loan.pk] = {f.attname: getattr(loan, f.attname) for f in LOAN_FIELDS}
        posting = _post_one(txn, loan, schedules[loan.pk], paid=paid, changed=changed[loan.pk])
        postings.append(posting)
        results[txn.txn_id] = (posting, True)
    if paid:
        Instalment.objects.bulk_update(list(paid.values()), INSTALMENT_PAID_FIELDS)
    if postings:
        Posting.objects.bulk_create(postings)
    _loans_save([(loans[loan_id], before[loan_id], fields) for loan_id, fields in changed.items()])
    return results


def _loans_save(changes: list[tuple[LoanAccount, dict, set[str]]]) -> None:
    """Each loan's changed fields in one UPDATE, and their audit events (what the change
    tracking would write, from the values read under the lock) in one outbox write: no
    read of the row before, as ``save()`` would make for its tracking."""
    now = timezone.now()
    written = []
    for loan, before, fields in changes:
        if not fields:
            continue
        loan.updated_at = now
        names = sorted({*fields, "updated_at"})
        LoanAccount.objects.filter(pk=loan.pk).update(
            **{name: getattr(loan, name) for name in names}
        )
        written.append((loan, before, names))
    audit_updates_add(written)


def _post_one(
    txn: TransactionItem,
    loan: LoanAccount,
    schedule: list[Instalment],
    *,
    paid: dict[int, Instalment],
    changed: set[str],
) -> Posting:
    """One payment applied in memory: ``schedule`` (the loan's instalments, locked) paid,
    and ``loan``'s balances, dues, last payment and status set; the instalments changed go
    into ``paid`` and the loan's fields into ``changed``, for the caller to write once.
    Returns the posting, not yet saved."""
    amount = from_paise(txn.amount_paise)
    instalments = [inst for inst in schedule if inst.status != Instalment.Status.PAID]
    allocations, excess = allocate(amount, instalments)
    by_id = {inst.pk: inst for inst in instalments}
    for allocation in allocations:
        inst = by_id[allocation.instalment_id]
        inst.charges_paid += allocation.charges
        inst.interest_paid += allocation.interest
        inst.principal_paid += allocation.principal
        inst.status = inst.derived_status
        paid[inst.pk] = inst
    posting = Posting(
        txn_id=txn.txn_id,
        loan=loan,
        branch_id=loan.branch_id,
        business_date=date.fromisoformat(txn.business_date),
        mode=txn.mode,
        amount=amount,
        charges=sum((a.charges for a in allocations), Decimal("0.00")),
        interest=sum((a.interest for a in allocations), Decimal("0.00")),
        principal=sum((a.principal for a in allocations), Decimal("0.00")),
        excess=excess,
        allocations=[a.as_json() for a in allocations],
    )
    # a loan without a schedule keeps its figures (see loan_dues_refresh)
    if schedule:
        changed.update(loan_dues_set(loan=loan, instalments=schedule))
    if loan.last_payment_date is None or posting.business_date >= loan.last_payment_date:
        loan.last_payment_date, loan.last_payment_amount = posting.business_date, amount
        changed.update(("last_payment_date", "last_payment_amount"))
    if loan.total_outstanding == 0:
        loan.status = LoanAccount.Status.CLOSED
        changed.add("status")
    return posting
