"""Payments: idempotent ingestion into DynamoDB, exactly-once posting to the loan ledger,
reversal through maker-checker.

Ingestion: claim the idempotency key (a conditional put, IN_FLIGHT with a lease) >
validate against Postgres > one TransactWriteItems: the key DONE with the response, the
transaction, the queue item, the audit event, and the uniqueness items of its receipt
number (per branch) and external reference (per API client), each "absent". Posting:
claim due queue items with a conditional update (lease) > post in one Postgres
transaction (loan row locked, a posting unique per txn_id) > mark the transaction POSTED
and the item DONE (which then expires). Every step can be repeated after a crash without
changing the result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.utils import timezone
from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from ulid import ULID

from accounts.models import Branch
from accounts.refdata import BranchRef
from accounts.scoping import scope_queryset
from approvals.services import KindHandler, approval_request_create, register_kind
from audit.ddb_models import AuditEventItem
from audit.services import audit_event_item, audit_record
from core.clock import business_date, iso
from core.money import from_paise, to_paise
from dynamo.errors import RETRYABLE_REASONS, cancellation_codes, is_unavailable
from dynamo.transactions import transact_write
from loans.models import Instalment, LoanAccount
from loans.services import loan_outstanding_refresh

from ..allocation import allocate
from ..ddb_models import (
    DedupItem,
    QueueItem,
    TransactionItem,
    UniqueKeyItem,
    branch_day_key,
    queue_live,
)
from ..exceptions import (
    DuplicatePayment,
    DuplicateReceipt,
    DuplicateReference,
    IdempotencyKeyReused,
    LedgerUnavailable,
    LoanNotFound,
    PaymentRejected,
    PostingRefused,
    RequestInFlight,
    StoreUnavailable,
    TransactionNotFound,
)
from ..models import Posting
from ..refdata import ledger_state

logger = logging.getLogger(__name__)

MODES = ("CASH", "UPI", "CHEQUE", "NEFT", "NACH")
POSTING = "POSTING"
CLAIM_LEASE = timedelta(seconds=15)
POSTING_LEASE = timedelta(seconds=settings.PAYMENTS_POSTING_LEASE_SECONDS)


class TxnStatus:
    RECEIVED = "RECEIVED"
    POSTED = "POSTED"
    FAILED = "FAILED"
    REVERSED = "REVERSED"


class QueueStatus:
    READY = "READY"
    LEASED = "LEASED"
    DONE = "DONE"
    DEAD = "DEAD"


# --- Money and time -------------------------------------------------------------------


def business_date_for(branch: Branch | BranchRef, moment: datetime) -> date:
    """The IST date a payment counts for: after the branch's cut-off, the next day."""
    return business_date(moment, branch.cutoff_time)


# --- Ingestion ------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentInput:
    loan_number: str
    amount: Decimal
    mode: str
    business_date: date | None = None
    receipt_number: str = ""
    collector: str = ""
    external_reference: str = ""

    def canonical(self) -> str:
        return json.dumps(
            {
                "loan_number": self.loan_number.upper(),
                "amount": f"{self.amount:.2f}",
                "mode": self.mode,
                "business_date": self.business_date.isoformat() if self.business_date else None,
                "receipt_number": self.receipt_number,
                "collector": self.collector,
                "external_reference": self.external_reference,
            },
            sort_keys=True,
        )


@dataclass(frozen=True)
class IngestResult:
    status: int
    body: dict
    replayed: bool


def transaction_body(txn: TransactionItem) -> dict:
    """The API's view of a transaction: amounts as strings with two decimals."""
    return {
        "txn_id": txn.txn_id,
        "status": txn.status,
        "loan_account": txn.loan_number,
        "amount": f"{from_paise(txn.amount_paise):.2f}",
        "mode": txn.mode,
        "business_date": txn.business_date,
        "receipt_number": txn.receipt_number or "",
        "collector": txn.collector or "",
        "external_reference": txn.external_reference or "",
        "created_at": txn.created_at,
        "posted_at": txn.posted_at,
        "failure_reason": txn.failure_reason,
    }


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _store_call(fn, *args, **kwargs):
    """Run a DynamoDB call; an unreachable or overloaded store becomes a 503."""
    try:
        return fn(*args, **kwargs)
    except PynamoDBException as exc:
        if is_unavailable(exc):
            raise StoreUnavailable("The payments store is unavailable; retry shortly.") from exc
        raise


def _dedup_get(dedup_key: str) -> DedupItem | None:
    try:
        item = _store_call(DedupItem.get, dedup_key, consistent_read=True)
    except DoesNotExist:
        return None
    return None if item.expires_at <= timezone.now() else item


def _existing_outcome(item: DedupItem, request_hash: str) -> IngestResult:
    """What a request whose key is already known gets: the first response, or a 409."""
    if item.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request; use a new key."
        )
    if item.state == "DONE":
        return IngestResult(int(item.response_status), json.loads(item.response_body), True)
    raise RequestInFlight("A request with this Idempotency-Key is being processed; retry shortly.")


def _claim(dedup_key: str, request_hash: str) -> str | IngestResult:
    """Claim the key for this request; returns the claim token, or the outcome for a
    request whose key is already known (raises 409s)."""
    existing = _dedup_get(dedup_key)
    now = timezone.now()
    if existing is not None and not (
        existing.state == "IN_FLIGHT" and existing.lease_until < now.timestamp()
    ):
        return _existing_outcome(existing, request_hash)
    if existing is not None and existing.request_hash != request_hash:
        return _existing_outcome(existing, request_hash)
    token = secrets.token_hex(16)
    claim = DedupItem(
        dedup_key,
        request_hash=request_hash,
        state="IN_FLIGHT",
        claim_token=token,
        lease_until=int((now + CLAIM_LEASE).timestamp()),
        created_at=iso(now),
        expires_at=now + timedelta(days=settings.PAYMENTS_IDEMPOTENCY_DAYS),
    )
    takeover = (
        (DedupItem.state == "IN_FLIGHT")
        & (DedupItem.lease_until < int(now.timestamp()))
        & (DedupItem.request_hash == request_hash)
    )
    condition = DedupItem.dedup_key.does_not_exist() | (DedupItem.expires_at < now) | takeover
    try:
        _store_call(claim.save, condition=condition)
    except PynamoDBException as exc:
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        existing = _dedup_get(dedup_key)
        if existing is None:  # expired between the two reads: the caller may retry
            raise RequestInFlight("The Idempotency-Key is changing hands; retry.") from exc
        return _existing_outcome(existing, request_hash)
    return token


def _release_claim(dedup_key: str, token: str) -> None:
    """Give the key back after a refusal, so that a corrected request may use it."""
    try:
        DedupItem(dedup_key).delete(condition=DedupItem.claim_token == token)
    except PynamoDBException:
        logger.warning("could not release idempotency claim %s", dedup_key[:12])


def _validate(payment: PaymentInput, principal) -> tuple[LoanAccount, date]:
    loan = (
        scope_queryset(LoanAccount.objects.select_related("branch"), principal)
        .filter(loan_number=payment.loan_number.upper())
        .first()
    )
    if loan is None:
        raise LoanNotFound(f"No loan account {payment.loan_number} that you may post to.")
    if loan.status != LoanAccount.Status.ACTIVE:
        raise PaymentRejected(
            f"Loan {loan.loan_number} is {loan.get_status_display().lower()}.",
            code="loan_not_active",
            field="loan_account",
        )
    today = business_date_for(loan.branch, timezone.now())
    business_date = payment.business_date or today
    if business_date > today:
        raise PaymentRejected(
            "The business date cannot be in the future.", code="invalid", field="business_date"
        )
    if business_date < today - timedelta(days=settings.PAYMENTS_BACKDATE_DAYS):
        raise PaymentRejected(
            f"The business date cannot be more than {settings.PAYMENTS_BACKDATE_DAYS} days back.",
            code="invalid",
            field="business_date",
        )
    return loan, business_date


@dataclass(frozen=True)
class _UniqueKey:
    """A value only one payment may carry, and the error a second payment gets."""

    key: str
    error: type[DuplicatePayment]
    field: str
    message: str


def _unique_keys(payment: PaymentInput, *, branch_id: int, source: str) -> list[_UniqueKey]:
    """The receipt number is unique per branch, whoever sends it (a receipt book belongs to
    a branch; compared without case). The external reference is unique per API client
    (``api:<id>``): other sources reuse it by design (NACH sends the mandate's UMRN with
    every debit, and is kept unique by its receipt number ``NACH-<execution>``)."""
    keys = []
    receipt = payment.receipt_number.strip().upper()
    if receipt:
        keys.append(
            _UniqueKey(
                f"receipt#{branch_id}#{receipt}",
                DuplicateReceipt,
                "receipt_number",
                f"Receipt {payment.receipt_number} of this branch is already recorded",
            )
        )
    reference = payment.external_reference.strip()
    if reference and source.startswith("api:"):
        keys.append(
            _UniqueKey(
                f"extref#{source}#{reference}",
                DuplicateReference,
                "external_reference",
                f"External reference {reference} is already recorded for this client",
            )
        )
    return keys


def _duplicate(unique: _UniqueKey, reason) -> DuplicatePayment:
    """The 409 naming the payment that holds the key (returned with the cancellation, or
    read when the store did not return it)."""
    raw = getattr(reason, "raw_item", None) or {}
    txn_id = raw.get("txn_id", {}).get("S")
    if txn_id is None:
        try:
            txn_id = _store_call(UniqueKeyItem.get, unique.key, consistent_read=True).txn_id
        except DoesNotExist:
            txn_id = ""
    return unique.error(
        f"{unique.message} as transaction {txn_id}.", txn_id=txn_id, field=unique.field
    )


def _intake_audit(txn: TransactionItem, *, principal, now: datetime) -> AuditEventItem:
    """The accepted payment's audit event; its id is the transaction's, so a retried
    write cannot store it twice."""
    return audit_event_item(
        entity=f"payments.transaction#{txn.txn_id}",
        action="create",
        entity_repr=f"₹{from_paise(txn.amount_paise)} on {txn.loan_number}",
        changes={
            name: [None, value]
            for name, value in (
                ("status", txn.status),
                ("loan_account", txn.loan_number),
                ("amount", f"{from_paise(txn.amount_paise):.2f}"),
                ("mode", txn.mode),
                ("business_date", txn.business_date),
                ("receipt_number", txn.receipt_number),
                ("collector", txn.collector),
                ("external_reference", txn.external_reference),
                ("source", txn.source),
            )
            if value is not None
        },
        actor=principal,
        event_id=txn.txn_id,
        occurred_at=now,
    )


def payment_ingest(
    *, payment: PaymentInput, idempotency_key: str, principal, source: str
) -> IngestResult:
    """Accept one payment exactly once per (source, Idempotency-Key), and only once per
    receipt number of a branch and external reference of an API client.

    A refused payment (422, 404, or 409 ``duplicate_receipt`` /
    ``duplicate_external_reference``) stores nothing and frees its key: the same key and
    body then get the same refusal again (the receipt is still taken), and the same key
    with a corrected receipt number is accepted."""
    dedup_key = _hash(f"{source}\n{idempotency_key}")
    request_hash = _hash(payment.canonical())
    claimed = _claim(dedup_key, request_hash)
    if isinstance(claimed, IngestResult):
        return claimed
    token = claimed
    try:
        loan, business_date = _validate(payment, principal)
    except (LoanNotFound, PaymentRejected):
        _release_claim(dedup_key, token)
        raise
    now = timezone.now()
    txn_id = str(ULID())
    txn = TransactionItem(
        txn_id,
        branch_day=branch_day_key(loan.branch_id, business_date),
        created_at=iso(now),
        loan_number=loan.loan_number,
        loan_id=loan.pk,
        branch_id=loan.branch_id,
        business_date=business_date.isoformat(),
        amount_paise=to_paise(payment.amount),
        mode=payment.mode,
        status=TxnStatus.RECEIVED,
        receipt_number=payment.receipt_number or None,
        collector=payment.collector or None,
        external_reference=payment.external_reference or None,
        source=source,
    )
    queue_item = QueueItem(
        txn_id,
        queue_status=f"{POSTING}#{QueueStatus.READY}",
        next_attempt_at=iso(now),
        txn_id=txn_id,
        loan_number=loan.loan_number,
        branch_id=loan.branch_id,
        attempts=0,
        created_at=iso(now),
        updated_at=iso(now),
    )
    body = transaction_body(txn)
    audit_item = _intake_audit(txn, principal=principal, now=now)
    uniques = _unique_keys(payment, branch_id=loan.branch_id, source=source)

    def build(tw) -> None:
        # PynamoDB sends puts before updates, and DynamoDB gives the cancellation reasons
        # in that order: see ``order`` below.
        tw.save(txn, condition=TransactionItem.txn_id.does_not_exist())
        tw.save(queue_item, condition=QueueItem.item_id.does_not_exist())
        tw.save(audit_item, condition=AuditEventItem.entity.does_not_exist())
        for unique in uniques:
            tw.save(
                UniqueKeyItem(unique.key, txn_id=txn_id, created_at=iso(now)),
                condition=UniqueKeyItem.unique_key.does_not_exist(),
                return_values="ALL_OLD",
            )
        tw.update(
            DedupItem(dedup_key),
            actions=[
                DedupItem.state.set("DONE"),
                DedupItem.txn_id.set(txn_id),
                DedupItem.response_status.set(201),
                DedupItem.response_body.set(json.dumps(body)),
            ],
            condition=(DedupItem.claim_token == token) & (DedupItem.state == "IN_FLIGHT"),
        )

    order = ["txn", "queue", "audit", *uniques, "dedup"]
    try:
        transact_write(build, client_request_token=token)
    except TransactWriteError as exc:
        failed = {
            part: reason
            for part, reason in zip(order, exc.cancellation_reasons, strict=False)
            if reason is not None and reason.code == "ConditionalCheckFailed"
        }
        if "dedup" in failed:
            raise RequestInFlight(
                "Another request took over this Idempotency-Key; retry to get its result."
            ) from exc
        taken = [unique for unique in uniques if unique in failed]
        if taken:
            _release_claim(dedup_key, token)
            raise _duplicate(taken[0], failed[taken[0]]) from exc
        # conflicts or throttling that outlasted the retries: the client retries later
        reasons = {code for code in cancellation_codes(exc) if code not in (None, "None")}
        if is_unavailable(exc) or reasons <= RETRYABLE_REASONS:
            raise StoreUnavailable("The payments store is unavailable; retry shortly.") from exc
        raise
    _enqueue_posting(txn_id)
    return IngestResult(201, body, False)


def _enqueue_posting(txn_id: str) -> None:
    """Post soon; if the broker is down, the periodic sweep posts it anyway."""
    from ..tasks import payment_post_task

    try:
        payment_post_task.delay(txn_id)
    except Exception:  # the queue item in DynamoDB is the source of truth
        logger.warning("could not enqueue posting of %s; the sweep will post it", txn_id)


# --- Reads ----------------------------------------------------------------------------


def transaction_get(*, txn_id: str) -> TransactionItem:
    try:
        return _store_call(TransactionItem.get, txn_id, consistent_read=True)
    except DoesNotExist:
        raise TransactionNotFound(f"No transaction {txn_id}.") from None


# --- Posting --------------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{secrets.token_hex(4)}"


def _backoff(attempts: int) -> timedelta:
    seconds = settings.PAYMENTS_POSTING_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, 15 * 60))


def queue_claim_due(*, limit: int, worker: str) -> list[QueueItem]:
    """Lease up to ``limit`` due items: READY ones, and LEASED ones whose lease ran out
    (their worker died). The conditional update makes a lease exclusive. When DynamoDB
    pushes back (throttling) after some items are leased, claiming stops there and those
    are returned, to be posted now rather than wait for their lease to run out."""
    now = timezone.now()
    claimed: list[QueueItem] = []
    for status in (QueueStatus.READY, QueueStatus.LEASED):
        try:
            candidates = _store_call(
                lambda s=status: list(
                    QueueItem.by_status.query(
                        f"{POSTING}#{s}",
                        QueueItem.next_attempt_at <= iso(now),
                        filter_condition=queue_live(now),
                        limit=limit,
                    )
                )
            )
        except StoreUnavailable:
            if not claimed:
                raise
            logger.warning("posting queue: claiming stopped by DynamoDB after %d", len(claimed))
            return claimed
        for candidate in candidates:
            if len(claimed) >= limit:
                return claimed
            item = QueueItem(candidate.item_id)
            try:
                item.update(
                    actions=[
                        QueueItem.queue_status.set(f"{POSTING}#{QueueStatus.LEASED}"),
                        QueueItem.next_attempt_at.set(iso(now + POSTING_LEASE)),
                        QueueItem.lease_owner.set(worker),
                        QueueItem.attempts.add(1),
                        QueueItem.updated_at.set(iso(now)),
                    ],
                    condition=(QueueItem.queue_status == candidate.queue_status)
                    & (QueueItem.next_attempt_at == candidate.next_attempt_at)
                    & queue_live(now),
                )
            except PynamoDBException as exc:
                if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                    continue  # another worker leased it first
                if claimed and is_unavailable(exc):
                    logger.warning("posting queue: claiming stopped by DynamoDB: %s", exc)
                    return claimed
                raise
            claimed.append(item)
    return claimed


def _ledger_open() -> None:
    switch = ledger_state()  # cached: read by every posting, changed once in a while
    if switch.maintenance:
        raise LedgerUnavailable(f"The ledger is in maintenance: {switch.reason or 'no reason'}")


@transaction.atomic
def ledger_post(*, txn: TransactionItem) -> tuple[Posting, bool]:
    """Post a transaction to its loan: (posting, True) when new, (posting, False) when it
    had been posted already. Allocation: oldest dues first; charges, interest, principal."""
    _ledger_open()
    loan = LoanAccount.objects.select_for_update().select_related("customer").get(pk=txn.loan_id)
    existing = Posting.objects.filter(txn_id=txn.txn_id).first()
    if existing is not None:
        return existing, False
    if loan.status != LoanAccount.Status.ACTIVE:
        raise PostingRefused(f"Loan {loan.loan_number} is {loan.get_status_display().lower()}.")
    amount = from_paise(txn.amount_paise)
    instalments = list(
        loan.instalments.select_for_update()
        .exclude(status=Instalment.Status.PAID)
        .order_by("due_date", "number")
    )
    allocations, excess = allocate(amount, instalments)
    by_id = {inst.pk: inst for inst in instalments}
    for allocation in allocations:
        inst = by_id[allocation.instalment_id]
        inst.charges_paid += allocation.charges
        inst.interest_paid += allocation.interest
        inst.principal_paid += allocation.principal
        inst.status = inst.derived_status
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
    loan_outstanding_refresh(loan=loan)
    if loan.total_outstanding == 0:
        loan.status = LoanAccount.Status.CLOSED
        loan.save(update_fields=["status", "updated_at"])
    _receipt_queue(loan=loan, txn=txn, amount=amount)
    return posting, True


def _receipt_queue(*, loan: LoanAccount, txn: TransactionItem, amount: Decimal) -> None:
    """The customer's receipt, released when the posting commits (so only once)."""
    from notifications.services import notification_queue

    try:
        notification_queue(
            template_code="receipt",
            channel="SMS",
            recipient=loan.customer.mobile,
            context={
                "customer_name": loan.customer.name,
                "amount": amount,
                "loan_number": loan.loan_number,
                "paid_on": date.fromisoformat(txn.business_date),
                "receipt_number": txn.receipt_number or txn.txn_id,
                "mode": txn.mode,
            },
            entity=f"payments.transaction#{txn.txn_id}",
        )
    except Exception:  # a receipt must never stop a posting
        logger.exception("receipt for %s not queued", txn.txn_id)


def _queue_expiry(moment: datetime) -> datetime:
    """When a finished queue item expires (the transaction itself stays)."""
    return moment + timedelta(days=settings.PAYMENTS_QUEUE_RETENTION_DAYS)


def _mark(txn_id: str, item_id: str, *, status: str, reason: str | None = None) -> None:
    """Transaction RECEIVED > POSTED or FAILED, and its queue item DONE (expiring), in one
    write."""
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
                QueueItem.queue_status.set(f"{POSTING}#{QueueStatus.DONE}"),
                QueueItem.updated_at.set(now),
                QueueItem.expires_at.set(_queue_expiry(moment)),
                QueueItem.last_error.set(reason[:500]) if reason else QueueItem.last_error.remove(),
            ],
        )

    try:
        transact_write(build)
    except TransactWriteError as exc:
        if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            _queue_done(item_id)  # already marked by an earlier run: just finish the item
            return
        raise


def _queue_done(item_id: str) -> None:
    now = timezone.now()
    QueueItem(item_id).update(
        actions=[
            QueueItem.queue_status.set(f"{POSTING}#{QueueStatus.DONE}"),
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
            QueueItem.queue_status.set(f"{POSTING}#{status}"),
            QueueItem.next_attempt_at.set(iso(now if dead else now + _backoff(attempts))),
            QueueItem.last_error.set(error[:500]),
            QueueItem.updated_at.set(iso(now)),
        ]
    )
    return "dead" if dead else "retry"


def queue_item_process(*, item: QueueItem) -> str:
    """Post one leased item. Returns posted, noop, failed, retry or dead."""
    item.refresh(consistent_read=True)
    txn = TransactionItem.get(item.txn_id, consistent_read=True)
    if txn.status != TxnStatus.RECEIVED:
        _queue_done(item.item_id)
        return "noop"
    try:
        _, created = ledger_post(txn=txn)
    except LedgerUnavailable as exc:
        return _queue_release(item, str(exc))
    except (OperationalError, InterfaceError) as exc:
        return _queue_release(item, f"ledger database unavailable: {exc}".splitlines()[0])
    except PostingRefused as exc:
        _mark(txn.txn_id, item.item_id, status=TxnStatus.FAILED, reason=str(exc))
        return "failed"
    _mark(txn.txn_id, item.item_id, status=TxnStatus.POSTED)
    return "posted" if created else "noop"


def payments_post_due(*, limit: int = 100, worker: str | None = None) -> dict[str, int]:
    """Claim and post what is due. Safe to run in any number of workers at once."""
    worker = worker or worker_name()
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
    worker = worker_name()
    item = QueueItem(txn_id)
    now = timezone.now()
    try:
        item.update(
            actions=[
                QueueItem.queue_status.set(f"{POSTING}#{QueueStatus.LEASED}"),
                QueueItem.next_attempt_at.set(iso(now + POSTING_LEASE)),
                QueueItem.lease_owner.set(worker),
                QueueItem.attempts.add(1),
                QueueItem.updated_at.set(iso(now)),
            ],
            condition=(QueueItem.queue_status == f"{POSTING}#{QueueStatus.READY}")
            & (QueueItem.next_attempt_at <= iso(now))
            & queue_live(now),
        )
    except PynamoDBException as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return "not_due"
        raise
    return queue_item_process(item=item)


def queue_item_retry(*, item_id: str, actor) -> None:
    """Staff send a dead letter back to the queue, with its attempts reset."""
    now = timezone.now()
    try:
        QueueItem(item_id).update(
            actions=[
                QueueItem.queue_status.set(f"{POSTING}#{QueueStatus.READY}"),
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


# --- Reversal (maker-checker) ---------------------------------------------------------


def payment_reversal_request(*, txn_id: str, reason: str, actor):
    posting = (
        scope_queryset(Posting.objects.select_related("loan"), actor).filter(txn_id=txn_id).first()
    )
    if posting is None:
        raise TransactionNotFound(f"No posted payment {txn_id} that you may see.")
    if posting.reversed_at:
        raise PaymentRejected("This payment is already reversed.", code="already_reversed")
    return approval_request_create(
        kind="PAYMENT_REVERSAL",
        branch_id=posting.branch_id,
        entity=f"payments.posting#{posting.pk}",
        entity_repr=f"₹{posting.amount} on {posting.loan.loan_number} ({txn_id})",
        reason=reason,
        payload={"txn_id": txn_id},
        actor=actor,
    )


def payment_reverse(*, txn_id: str, actor) -> Posting:
    """Undo a posting: reopen exactly the dues it paid. Runs inside the approval's
    transaction; DynamoDB's transaction is marked REVERSED after commit."""
    posting = Posting.objects.select_for_update().get(txn_id=txn_id)
    if posting.reversed_at:
        raise PaymentRejected("This payment is already reversed.", code="already_reversed")
    loan = LoanAccount.objects.select_for_update().get(pk=posting.loan_id)
    instalments = {i.pk: i for i in loan.instalments.select_for_update()}
    for allocation in posting.allocations:
        inst = instalments[allocation["instalment"]]
        inst.charges_paid -= Decimal(allocation["charges"])
        inst.interest_paid -= Decimal(allocation["interest"])
        inst.principal_paid -= Decimal(allocation["principal"])
        inst.status = inst.derived_status
    Instalment.objects.bulk_update(
        list(instalments.values()), ["charges_paid", "interest_paid", "principal_paid", "status"]
    )
    loan_outstanding_refresh(loan=loan)
    if loan.status == LoanAccount.Status.CLOSED and loan.total_outstanding > 0:
        loan.status = LoanAccount.Status.ACTIVE
        loan.save(update_fields=["status", "updated_at"])
    posting.reversed_at = timezone.now()
    posting.reversed_by = actor
    posting.save(update_fields=["reversed_at", "reversed_by"])
    audit_record(
        instance_or_entity=posting,
        action="transition",
        changes={"status": ["POSTED", "REVERSED"], "amount": [str(posting.amount), None]},
        actor=actor,
    )
    transaction.on_commit(lambda: _reversal_sync_enqueue(txn_id))
    return posting


def _reversal_sync_enqueue(txn_id: str) -> None:
    from ..tasks import payment_reversal_sync_task

    try:
        payment_reversal_sync_task.delay(txn_id)
    except Exception:
        logger.warning("reversal sync of %s not enqueued; the sweep will do it", txn_id)


def payment_reversal_sync(*, txn_id: str) -> bool:
    """Mark DynamoDB's transaction REVERSED for a reversed posting (idempotent)."""
    posting = Posting.objects.filter(txn_id=txn_id, reversed_at__isnull=False).first()
    if posting is None or posting.reversal_synced_at:
        return False
    try:
        TransactionItem(txn_id).update(
            actions=[
                TransactionItem.status.set(TxnStatus.REVERSED),
                TransactionItem.reversed_at.set(iso(posting.reversed_at)),
            ],
            condition=TransactionItem.status.is_in(TxnStatus.POSTED, TxnStatus.REVERSED),
        )
    except PynamoDBException as exc:
        if is_unavailable(exc):
            raise StoreUnavailable("The payments store is unavailable.") from exc
        raise
    Posting.objects.filter(pk=posting.pk).update(reversal_synced_at=timezone.now())
    return True


def payment_reversals_sync_pending(*, limit: int = 200) -> int:
    pending = Posting.objects.filter(
        reversed_at__isnull=False, reversal_synced_at__isnull=True
    ).values_list("txn_id", flat=True)[:limit]
    return sum(payment_reversal_sync(txn_id=txn_id) for txn_id in pending)


def _apply_reversal(*, request, actor) -> None:
    payment_reverse(txn_id=request.payload["txn_id"], actor=actor)


register_kind(
    "PAYMENT_REVERSAL",
    KindHandler(
        maker_permission="payments.request_reversal",
        checker_permission="payments.approve_reversal",
        apply=_apply_reversal,
    ),
)
