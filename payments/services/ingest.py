"""Ingestion: claim the idempotency key (a conditional put, IN_FLIGHT with a lease) >
validate against Postgres > one TransactWriteItems: the key DONE with the response, the
transaction, the queue item, the audit event, and the uniqueness items of its receipt
number (per branch) and external reference (per API client), each "absent".
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from ulid import ULID

from accounts.scoping import scope_queryset
from audit.ddb_models import AuditEventItem
from audit.services import audit_event_item
from core.clock import iso
from core.money import from_paise, inr, to_paise
from dynamo.errors import RETRYABLE_REASONS, cancellation_codes, is_unavailable
from dynamo.transactions import transact_write
from loans.models import LoanAccount

from ..ddb_models import (
    DedupItem,
    QueueItem,
    TransactionItem,
    UniqueKeyItem,
    branch_day_key,
    queue_item_for,
)
from ..exceptions import (
    DuplicatePayment,
    DuplicateReceipt,
    DuplicateReference,
    IdempotencyKeyReused,
    LoanNotFound,
    PaymentRejected,
    RequestInFlight,
    StoreUnavailable,
    TransactionNotFound,
)
from ._common import (
    TxnStatus,
    _enqueue_posting,
    _store_call,
    business_date_for,
)

logger = logging.getLogger(__name__)


CLAIM_LEASE = timedelta(seconds=15)


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


def _dedup_key(source: str, idempotency_key: str) -> str:
    return _hash(f"{source}\n{idempotency_key}")


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
        raise LoanNotFound(loan_not_found_message(payment.loan_number))
    return loan, payable_business_date(loan, payment.business_date)


def loan_not_found_message(loan_number: str) -> str:
    """The same words for a loan that does not exist and one outside the user's scope."""
    return f"No loan account {loan_number} that you may post to."


def payable_business_date(loan: LoanAccount, requested: date | None) -> date:
    """The business date a payment to ``loan`` counts for (``requested``, or today by the
    branch's cut-off), refusing (``PaymentRejected``) a loan that is not active and a date
    in the future or beyond the back-date limit."""
    if loan.status != LoanAccount.Status.ACTIVE:
        raise PaymentRejected(
            f"Loan {loan.loan_number} is {loan.get_status_display().lower()}.",
            code="loan_not_active",
            field="loan_account",
        )
    today = business_date_for(loan.branch, timezone.now())
    business_date = requested or today
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
    return business_date


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
        entity_repr=f"{inr(from_paise(txn.amount_paise))} on {txn.loan_number}",
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
    dedup_key = _dedup_key(source, idempotency_key)
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
    queue_item = queue_item_for(txn)
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


def ingest_outcome(*, idempotency_key: str, source: str) -> IngestResult | None:
    """The first response of the payment accepted with this key (as a replay), or None when
    the key is unknown, expired or still in flight. For a caller whose own record of an
    accepted payment was lost (the branch desk, whose Postgres commit failed after DynamoDB
    accepted it) and whose retry differs in its body (a receipt number taken since)."""
    item = _dedup_get(_hash(f"{source}\n{idempotency_key}"))
    if item is None or item.state != "DONE":
        return None
    return IngestResult(int(item.response_status), json.loads(item.response_body), True)


def transaction_get(*, txn_id: str) -> TransactionItem:
    try:
        return _store_call(TransactionItem.get, txn_id, consistent_read=True)
    except DoesNotExist:
        raise TransactionNotFound(f"No transaction {txn_id}.") from None
