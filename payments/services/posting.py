"""Posting: claim due queue items with a conditional update (lease) > post in one Postgres
transaction (loan row locked, a posting unique per txn_id) > mark the transaction POSTED
and the item DONE (which then expires), and store the customer's receipt, in one
TransactWriteItems. Every step can be repeated after a crash without changing the result:
a run that finds the posting made marks it, with the receipt the dead run did not store.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.utils import timezone
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition

from audit.services import audit_record
from core.clock import iso
from core.jobs import worker_id
from core.money import from_paise
from dynamo.errors import cancellation_codes, is_unavailable
from dynamo.shards import in_parallel_settled
from dynamo.transactions import transact_write
from loans.models import Instalment, LoanAccount
from loans.services import loan_dues_set
from notifications.services import (
    notification_build,
    notification_send_enqueue,
    notification_transact_put,
)

from ..allocation import allocate
from ..ddb_models import QueueItem, TransactionItem, queue_live, queue_query, queue_status_set
from ..exceptions import (
    LedgerSwitchRefused,
    LedgerUnavailable,
    PaymentRejected,
    PostingRefused,
    StoreUnavailable,
)
from ..models import LedgerSwitch, Posting
from ..refdata import ledger_state
from ._common import POSTING, QueueStatus, TxnStatus, _enqueue_posting, _store_call

logger = logging.getLogger(__name__)


POSTING_LEASE = timedelta(seconds=settings.PAYMENTS_POSTING_LEASE_SECONDS)


def _backoff(attempts: int) -> timedelta:
    seconds = settings.PAYMENTS_POSTING_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, 15 * 60))


def _lease(item_id: str, *, condition: Condition, worker: str, now: datetime) -> QueueItem:
    """Lease one item if ``condition`` still holds: one conditional UpdateItem, whose answer
    (all the item's attributes) is the item to post, with no second read."""
    item = QueueItem(item_id)
    item.update(
        actions=[
            *queue_status_set(item_id, QueueStatus.LEASED),
            QueueItem.next_attempt_at.set(iso(now + POSTING_LEASE)),
            QueueItem.lease_owner.set(worker),
            QueueItem.attempts.add(1),
            QueueItem.updated_at.set(iso(now)),
        ],
        condition=condition & queue_live(now),
    )
    return item


def _lease_candidate(candidate: QueueItem, *, worker: str, now: datetime) -> QueueItem | None:
    """The candidate leased, None when another worker leased it first."""
    try:
        return _lease(
            candidate.item_id,
            condition=(QueueItem.queue_status == candidate.queue_status)
            & (QueueItem.next_attempt_at == candidate.next_attempt_at),
            worker=worker,
            now=now,
        )
    except PynamoDBException as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return None
        raise


def queue_claim_due(*, limit: int, worker: str) -> list[QueueItem]:
    """Lease up to ``limit`` due items, soonest due first: READY ones, and LEASED ones whose
    lease ran out (their worker died). Every shard of the index is read at once, and the
    candidates are leased in parallel, each by a conditional update that makes its lease
    exclusive. When DynamoDB pushes back (throttling) after some items are leased, claiming
    stops there and those are returned, to be posted now rather than wait for their lease
    to run out."""
    now = timezone.now()
    claimed: list[QueueItem] = []
    for status in (QueueStatus.READY, QueueStatus.LEASED):
        wanted = limit - len(claimed)
        try:
            candidates = _store_call(
                lambda s=status, n=wanted: queue_query(
                    s,
                    QueueItem.next_attempt_at <= iso(now),
                    filter_condition=queue_live(now),
                    limit=n,
                )
            )
        except StoreUnavailable:
            if not claimed:
                raise
            logger.warning("posting queue: claiming stopped by DynamoDB after %d", len(claimed))
            return claimed
        while candidates and len(claimed) < limit:
            batch, candidates = (
                candidates[: limit - len(claimed)],
                candidates[limit - len(claimed) :],
            )
            results = in_parallel_settled(
                lambda c: _lease_candidate(c, worker=worker, now=now), batch
            )
            claimed += [item for item in results if isinstance(item, QueueItem)]
            errors = [error for error in results if isinstance(error, Exception)]
            if errors:
                if claimed and all(is_unavailable(error) for error in errors):
                    logger.warning("posting queue: claiming stopped by DynamoDB: %s", errors[0])
                    return claimed
                raise errors[0]
        if len(claimed) >= limit:
            break
    return claimed


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


@transaction.atomic
def ledger_post(*, txn: TransactionItem) -> tuple[Posting, bool]:
    """Post a transaction to its loan: (posting, True) when new, (posting, False) when it
    had been posted already; ``posting.loan`` is the loan with its customer. Allocation:
    oldest dues first; charges, interest, principal. Six statements: the loan locked, the
    posting looked for, the instalments locked (all of them: the dues are recomputed from
    them, without reading them again), one update of the instalments paid, the posting, one
    update of the loan."""
    _ledger_open()
    loan = LoanAccount.objects.select_for_update().select_related("customer").get(pk=txn.loan_id)
    existing = Posting.objects.filter(txn_id=txn.txn_id).first()
    if existing is not None:
        existing.loan = loan
        return existing, False
    if loan.status != LoanAccount.Status.ACTIVE:
        raise PostingRefused(f"Loan {loan.loan_number} is {loan.get_status_display().lower()}.")
    amount = from_paise(txn.amount_paise)
    schedule = list(loan.instalments.select_for_update().order_by("due_date", "number"))
    instalments = [inst for inst in schedule if inst.status != Instalment.Status.PAID]
    allocations, excess = allocate(amount, instalments)
    by_id = {inst.pk: inst for inst in instalments}
    for allocation in allocations:
        inst = by_id[allocation.instalment_id]
        inst.charges_paid += allocation.charges
        inst.interest_paid += allocation.interest
        inst.principal_paid += allocation.principal
        inst.status = inst.derived_status
    if allocations:
        Instalment.objects.bulk_update(
            [by_id[a.instalment_id] for a in allocations],
            ["charges_paid", "interest_paid", "principal_paid", "status"],
        )
    posting = Posting.objects.create(
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
    changed = list(loan_dues_set(loan=loan, instalments=schedule)) if schedule else []
    if loan.last_payment_date is None or posting.business_date >= loan.last_payment_date:
        loan.last_payment_date, loan.last_payment_amount = posting.business_date, amount
        changed += ["last_payment_date", "last_payment_amount"]
    if loan.total_outstanding == 0:
        loan.status = LoanAccount.Status.CLOSED
        changed.append("status")
    if changed:
        loan.save(update_fields=sorted({*changed, "updated_at"}))
    return posting, True


def _receipt(*, loan: LoanAccount, txn: TransactionItem):
    """The customer's receipt of a posted payment, built to be stored with the write that
    marks the payment POSTED (so once, and only for a payment posted); its id is the
    payment's. ``None`` when it cannot be built: a receipt must never stop a posting."""
    try:
        return notification_build(
            notification_id=txn.txn_id,
            template_code="receipt",
            channel="SMS",
            recipient=loan.customer.mobile,
            context={
                "customer_name": loan.customer.name,
                "amount": from_paise(txn.amount_paise),
                "loan_number": loan.loan_number,
                "paid_on": date.fromisoformat(txn.business_date),
                "receipt_number": txn.receipt_number or txn.txn_id,
                "mode": txn.mode,
            },
            entity=f"payments.transaction#{txn.txn_id}",
        )
    except Exception:
        logger.exception("receipt for %s not built", txn.txn_id)
        return None


def _queue_expiry(moment: datetime) -> datetime:
    """When a finished queue item expires (the transaction itself stays)."""
    return moment + timedelta(days=settings.PAYMENTS_QUEUE_RETENTION_DAYS)


def _mark(
    txn_id: str, item_id: str, *, status: str, reason: str | None = None, receipt=None
) -> None:
    """Transaction RECEIVED > POSTED or FAILED, its queue item DONE (expiring), and the
    receipt of a posted one stored, in one write; then the receipt's send task."""
    moment = timezone.now()
    now = iso(moment)
    actions = [TransactionItem.status.set(status)]
    if status == TxnStatus.POSTED:
        actions.append(TransactionItem.posted_at.set(now))
    if reason:
        actions.append(TransactionItem.failure_reason.set(reason[:500]))

    def build(tw) -> None:
        tw.update(
            TransactionItem(txn_id),
            actions=actions,
            condition=TransactionItem.status == TxnStatus.RECEIVED,
        )
        tw.update(
            QueueItem(item_id),
            actions=[
                *queue_status_set(item_id, QueueStatus.DONE),
                QueueItem.updated_at.set(now),
                QueueItem.expires_at.set(_queue_expiry(moment)),
                QueueItem.last_error.set(reason[:500]) if reason else QueueItem.last_error.remove(),
            ],
        )
        if receipt is not None:
            notification_transact_put(tw, receipt)

    try:
        transact_write(build)
    except TransactWriteError as exc:
        codes = cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            _queue_done(item_id)  # already marked by an earlier run: just finish the item
            return
        if receipt is not None and "ConditionalCheckFailed" in codes[2:]:
            # a receipt stored already (never without the mark, but never block a posting)
            _mark(txn_id, item_id, status=status, reason=reason)
            return
        raise
    if receipt is not None:
        notification_send_enqueue(receipt.notification_id)


def _queue_done(item_id: str) -> None:
    now = timezone.now()
    QueueItem(item_id).update(
        actions=[
            *queue_status_set(item_id, QueueStatus.DONE),
            QueueItem.updated_at.set(iso(now)),
            QueueItem.expires_at.set(_queue_expiry(now)),
        ]
    )


def _queue_release(item: QueueItem, error: str) -> str:
    """Back off, or go to the dead letters after the last attempt."""
    now = timezone.now()
    attempts = int(item.attempts or 0)
    dead = attempts >= settings.PAYMENTS_POSTING_MAX_ATTEMPTS
    status = QueueStatus.DEAD if dead else QueueStatus.READY
    QueueItem(item.item_id).update(
        actions=[
            *queue_status_set(item.item_id, status),
            QueueItem.next_attempt_at.set(iso(now if dead else now + _backoff(attempts))),
            QueueItem.last_error.set(error[:500]),
            QueueItem.updated_at.set(iso(now)),
        ]
    )
    return "dead" if dead else "retry"


def _transaction_of(item: QueueItem) -> TransactionItem:
    """The transaction to post, from the copy its queue item carries (a transaction is
    RECEIVED and unchanged until posted: a reversal needs it POSTED); an item from before
    the copy reads the transaction."""
    if item.amount_paise is None:
        return TransactionItem.get(item.txn_id, consistent_read=True)
    return TransactionItem(
        item.txn_id,
        loan_id=item.loan_id,
        loan_number=item.loan_number,
        branch_id=item.branch_id,
        amount_paise=item.amount_paise,
        business_date=item.business_date,
        mode=item.mode,
        receipt_number=item.receipt_number,
        status=TxnStatus.RECEIVED,
    )


def queue_item_process(*, item: QueueItem) -> str:
    """Post one item just leased (``item`` as the lease's update returned it). Returns
    posted, noop, failed, retry or dead."""
    txn = _transaction_of(item)
    if txn.status != TxnStatus.RECEIVED:
        _queue_done(item.item_id)
        return "noop"
    try:
        posting, created = ledger_post(txn=txn)
    except LedgerUnavailable as exc:
        return _queue_release(item, str(exc))
    except (OperationalError, InterfaceError) as exc:
        return _queue_release(item, f"ledger database unavailable: {exc}".splitlines()[0])
    except PostingRefused as exc:
        _mark(txn.txn_id, item.item_id, status=TxnStatus.FAILED, reason=str(exc))
        return "failed"
    receipt = _receipt(loan=posting.loan, txn=txn)
    _mark(txn.txn_id, item.item_id, status=TxnStatus.POSTED, receipt=receipt)
    return "posted" if created else "noop"


def payments_post_due(*, limit: int = 100, worker: str | None = None) -> dict[str, int]:
    """Claim and post what is due. Safe to run in any number of workers at once."""
    worker = worker or worker_id()
    outcomes: dict[str, int] = {}
    for item in queue_claim_due(limit=limit, worker=worker):
        try:
            outcome = queue_item_process(item=item)
        except PynamoDBException as exc:  # the lease runs out and another run retries
            logger.warning("posting %s interrupted by DynamoDB: %s", item.item_id, exc)
            outcome = "interrupted"
        except DatabaseError as exc:
            outcome = _queue_release(item, f"ledger database error: {exc}".splitlines()[0])
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def payment_post_one(*, txn_id: str) -> str:
    """Post one transaction now if its item is due (used right after ingestion)."""
    now = timezone.now()
    try:
        item = _lease(
            txn_id,
            condition=(QueueItem.queue_status == f"{POSTING}#{QueueStatus.READY}")
            & (QueueItem.next_attempt_at <= iso(now)),
            worker=worker_id(),
            now=now,
        )
    except PynamoDBException as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return "not_due"
        raise
    return queue_item_process(item=item)


def payments_post_these(*, txn_ids: list[str]) -> dict[str, int]:
    """Post these transactions now where their items are due: the payments one web process
    accepted in the last moments, published together (``ingest``'s publisher)."""
    outcomes: dict[str, int] = {}
    for txn_id in txn_ids:
        outcome = payment_post_one(txn_id=txn_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def queue_item_retry(*, item_id: str, actor) -> None:
    """Staff send a dead letter back to the queue, with its attempts reset."""
    now = timezone.now()
    try:
        QueueItem(item_id).update(
            actions=[
                *queue_status_set(item_id, QueueStatus.READY),
                QueueItem.next_attempt_at.set(iso(now)),
                QueueItem.attempts.set(0),
                QueueItem.updated_at.set(iso(now)),
                QueueItem.expires_at.remove(),
            ],
            condition=QueueItem.queue_status == f"{POSTING}#{QueueStatus.DEAD}",
        )
    except PynamoDBException as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            raise PaymentRejected("Only a dead letter can be retried.", code="not_dead") from exc
        raise
    audit_record(
        instance_or_entity=f"payments.queueitem#{item_id}",
        action="transition",
        changes={"status": [QueueStatus.DEAD, QueueStatus.READY]},
        remarks="retried from the admin",
        actor=actor,
    )
    _enqueue_posting(item_id)
