"""Posting: claim due queue items with a conditional update each (lease) > post them, up to
``POSTING_BATCH`` at a time, in one Postgres transaction (``ledger``: loan rows locked, a
posting unique per txn_id) > mark their transactions POSTED and their items DONE (which
then expire), and store the customers' receipts, in one TransactWriteItems. Every step can
be repeated after a crash without changing the result: a run that finds a posting made
marks it, with the receipt the dead run did not store.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
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
from loans.models import LoanAccount
from notifications.services import (
    notification_build,
    notification_send_enqueue,
    notification_transact_put,
)

from ..ddb_models import QueueItem, TransactionItem, queue_live, queue_query, queue_status_set
from ..exceptions import LedgerUnavailable, PaymentRejected, PostingRefused, StoreUnavailable
from ._common import POSTING, QueueStatus, TxnStatus, _enqueue_posting, _store_call
from .ledger import ledger_post_many

if TYPE_CHECKING:
    from notifications.ddb_models import NotificationItem

logger = logging.getLogger(__name__)


POSTING_LEASE = timedelta(seconds=settings.PAYMENTS_POSTING_LEASE_SECONDS)
# Payments posted in one ledger transaction and marked in one TransactWriteItems. A batch
# holds its loans' locks until it commits, so it stays small.
POSTING_BATCH = 20


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


@dataclass(frozen=True)
class _Mark:
    """How a posted or refused payment ends: its transaction POSTED (with the receipt) or
    FAILED (with the reason), its queue item DONE."""

    txn_id: str
    item_id: str
    status: str
    reason: str | None = None
    receipt: NotificationItem | None = None


def _mark_into(tw, mark: _Mark, moment: datetime) -> None:
    """The writes of ``mark``, added to ``tw``: transaction RECEIVED > POSTED or FAILED,
    its queue item DONE (expiring), and the receipt of a posted one stored."""
    now = iso(moment)
    actions = [TransactionItem.status.set(mark.status)]
    if mark.status == TxnStatus.POSTED:
        actions.append(TransactionItem.posted_at.set(now))
    if mark.reason:
        actions.append(TransactionItem.failure_reason.set(mark.reason[:500]))
    tw.update(
        TransactionItem(mark.txn_id),
        actions=actions,
        condition=TransactionItem.status == TxnStatus.RECEIVED,
    )
    tw.update(
        QueueItem(mark.item_id),
        actions=[
            *queue_status_set(mark.item_id, QueueStatus.DONE),
            QueueItem.updated_at.set(now),
            QueueItem.expires_at.set(_queue_expiry(moment)),
            QueueItem.last_error.set(mark.reason[:500])
            if mark.reason
            else QueueItem.last_error.remove(),
        ],
    )
    if mark.receipt is not None:
        notification_transact_put(tw, mark.receipt)


def _mark(mark: _Mark) -> None:
    """One payment's mark in one write; then the receipt's send task."""
    try:
        transact_write(lambda tw: _mark_into(tw, mark, timezone.now()))
    except TransactWriteError as exc:
        # the reasons in the order PynamoDB sends the items: the puts (the receipt) first
        codes = [*cancellation_codes(exc), None, None]
        receipt_code, txn_code = (codes[0], codes[1]) if mark.receipt else (None, codes[0])
        if txn_code == "ConditionalCheckFailed":
            _queue_done(mark.item_id)  # already marked by an earlier run: just finish the item
            return
        if receipt_code == "ConditionalCheckFailed":
            # a receipt stored already (never without the mark, but never block a posting)
            _mark(replace(mark, receipt=None))
            return
        raise
    if mark.receipt is not None:
        notification_send_enqueue(mark.receipt.notification_id)


def _mark_many(marks: list[_Mark]) -> None:
    """The marks of a batch in one TransactWriteItems (at most 3 writes a payment, so
    ``POSTING_BATCH`` stays far below DynamoDB's 100); when a condition refuses it (a
    payment marked already by an earlier run, a receipt stored already), each on its own,
    as ``_mark`` finishes such a one. Then the receipts' send tasks."""
    if len(marks) <= 1:
        for mark in marks:
            _mark(mark)
        return
    moment = timezone.now()

    def build(tw) -> None:
        for mark in marks:
            _mark_into(tw, mark, moment)

    try:
        transact_write(build)
    except TransactWriteError as exc:
        if "ConditionalCheckFailed" not in cancellation_codes(exc):
            raise
        for mark in marks:
            _mark(mark)
        return
    for mark in marks:
        if mark.receipt is not None:
            notification_send_enqueue(mark.receipt.notification_id)


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
    posted, noop, failed, retry, dead or interrupted."""
    return queue_items_process(items=[item])[0]


def queue_items_process(*, items: list[QueueItem]) -> list[str]:
    """Post items just leased, ``POSTING_BATCH`` at a time (in their order): each batch in
    one ledger transaction and one mark. Returns each item's outcome, in order: posted,
    noop, failed, retry, dead, or interrupted (by DynamoDB: its lease runs out and another
    run takes it)."""
    outcomes: list[str] = []
    for start in range(0, len(items), POSTING_BATCH):
        outcomes += _batch_process(items[start : start + POSTING_BATCH])
    return outcomes


def _batch_process(items: list[QueueItem]) -> list[str]:
    try:
        return _batch_post(items)
    except PynamoDBException as exc:  # the leases run out and another run retries
        logger.warning("posting %d item(s) interrupted by DynamoDB: %s", len(items), exc)
        return ["interrupted"] * len(items)
    except DatabaseError as exc:
        if len(items) > 1:
            # one payment's statement failed: each on its own, so that it holds back no other
            return [outcome for item in items for outcome in _batch_process([item])]
        return [_queue_release(items[0], f"ledger database error: {exc}".splitlines()[0])]


def _batch_post(items: list[QueueItem]) -> list[str]:
    outcomes: dict[str, str] = {}
    pending: list[tuple[QueueItem, TransactionItem]] = []
    for item in items:
        txn = _transaction_of(item)
        if txn.status == TxnStatus.RECEIVED:
            pending.append((item, txn))
        else:
            _queue_done(item.item_id)
            outcomes[item.item_id] = "noop"
    if pending:
        try:
            results = ledger_post_many(txns=[txn for _, txn in pending])
        except LedgerUnavailable as exc:
            results = {txn.txn_id: str(exc) for _, txn in pending}
        except (OperationalError, InterfaceError) as exc:
            error = f"ledger database unavailable: {exc}".splitlines()[0]
            results = {txn.txn_id: error for _, txn in pending}
        marks = []
        for item, txn in pending:
            result = results[txn.txn_id]
            if isinstance(result, str):  # the ledger could not be reached: back off
                outcomes[item.item_id] = _queue_release(item, result)
            elif isinstance(result, PostingRefused):
                marks.append(_Mark(txn.txn_id, item.item_id, TxnStatus.FAILED, reason=str(result)))
                outcomes[item.item_id] = "failed"
            else:
                posting, created = result
                receipt = _receipt(loan=posting.loan, txn=txn)
                marks.append(_Mark(txn.txn_id, item.item_id, TxnStatus.POSTED, receipt=receipt))
                outcomes[item.item_id] = "posted" if created else "noop"
        _mark_many(marks)
    return [outcomes[item.item_id] for item in items]


def payments_post_due(*, limit: int = 100, worker: str | None = None) -> dict[str, int]:
    """Claim and post what is due. Safe to run in any number of workers at once."""
    claimed = queue_claim_due(limit=limit, worker=worker or worker_id())
    return dict(Counter(queue_items_process(items=claimed)))


def _lease_due(txn_id: str, *, worker: str, now: datetime) -> QueueItem | None:
    """The transaction's item leased if it is READY and due, else None."""
    try:
        return _lease(
            txn_id,
            condition=(QueueItem.queue_status == f"{POSTING}#{QueueStatus.READY}")
            & (QueueItem.next_attempt_at <= iso(now)),
            worker=worker,
            now=now,
        )
    except PynamoDBException as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return None
        raise


def payment_post_one(*, txn_id: str) -> str:
    """Post one transaction now if its item is due (used right after ingestion)."""
    (outcome,) = payments_post_these(txn_ids=[txn_id]).keys()  # {outcome: 1}
    return outcome


def payments_post_these(*, txn_ids: list[str]) -> dict[str, int]:
    """Post these transactions now where their items are due: the payments one web process
    accepted in the last moments, published together (``ingest``'s publisher). Their items
    are leased at once (each by its conditional update), then posted together
    (``queue_items_process``); ``not_due`` counts those leased or finished elsewhere. A
    lease that DynamoDB refused is raised once the others are posted (the sweep posts it)."""
    now, worker = timezone.now(), worker_id()
    leases = in_parallel_settled(
        lambda txn_id: _lease_due(txn_id, worker=worker, now=now), list(dict.fromkeys(txn_ids))
    )
    leased = [lease for lease in leases if isinstance(lease, QueueItem)]
    outcomes = Counter(queue_items_process(items=leased))
    if not_due := sum(lease is None for lease in leases):
        outcomes["not_due"] = not_due
    errors = [lease for lease in leases if isinstance(lease, Exception)]
    if errors:
        raise errors[0]
    return dict(outcomes)


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
