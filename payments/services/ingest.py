"""Ingestion: validate against PostgreSQL (one indexed query: the loan, its branch and the
caller's scope) > ONE DynamoDB ``TransactWriteItems`` > respond. The transaction puts:

- the idempotency key (``DedupItem``) already ``DONE`` with the response, on condition that
  the key is free (absent or expired), returning the item it found (``ALL_OLD``) otherwise;
- the transaction, its posting queue item and its intake audit event (new ids: "absent");
- the uniqueness items of its receipt number (per branch) and external reference (per API
  client), each "absent", also returning what they found.

DynamoDB applies all of it or nothing, so a key is either free or ``DONE`` with its first
answer: exactly one of two requests with the same key can write it. The common case, a
new key, is one round trip. Only when the transaction is cancelled by a condition is
the key looked at, from the item the cancellation returns (a consistent read when the store
did not return it): the same body is a replay of the first response, another body a 409
``idempotency_key_reused``. A refused payment (404, 422, a taken receipt number or
reference) writes nothing; a refusal of validation first looks the key up, so that a
retry of an accepted payment replays its answer even when its loan has closed since.

**"In flight"** no longer exists as a stored state: there is no claim before the write.
Two requests with one key at the same moment both validate and both send the
transaction; one is applied and the other's is cancelled on the key (on AWS the two may
first collide as a ``TransactionConflict``, retried with backoff by ``transact_write``), so
the other reads the key and answers the same 201 as a replay. ``RequestInFlight`` (409
``request_in_flight``, Retry-After) remains for a claim written by the earlier version
of this module (``IN_FLIGHT`` with a lease, during a rolling deploy: taken over once its
lease has run out, by the same request only) and for a key that expired between the
cancellation and the read.

**A crash between DynamoDB's accept and the caller's PostgreSQL work** (the branch desk
records its ``DeskReceipt`` after ``payment_ingest`` returns, in its own transaction): the
payment is stored with its key ``DONE`` and its queue item, so it is posted to the ledger
whatever happens to the caller. The caller's retry with the same key gets the first
response as a replay (``ingest_outcome`` serves one whose body changed meanwhile, e.g. a
receipt number taken since), and records its side then; nothing is booked twice. A crash
before or during the transaction leaves nothing: the retry is a first request. A lost
answer of an applied transaction is retried with the same client request token, and a
retry that meets its own write is recognised by its transaction id (201, not a replay).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.models import Model
from ulid import ULID

from accounts.models import Branch
from accounts.scoping import scope_sql
from audit.ddb_models import AuditEventItem
from audit.services import audit_event_item
from core.clock import iso
from core.money import from_paise, inr, to_paise
from dynamo.errors import RETRYABLE_REASONS, cancellation_codes, is_unavailable
from dynamo.transactions import transact_put
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
    return _live(item, timezone.now())


def _live(item: DedupItem, now: datetime) -> DedupItem | None:
    """The key as it counts: an expired one (DynamoDB deletes them late) is free."""
    return None if item.expires_at <= now else item


def _put_absent(item: Model, *, return_old: bool = False, **extra) -> dict:
    """A put of ``item`` in DynamoDB's wire form, on condition that its key is absent."""
    put = {
        "TableName": item.Meta.table_name,
        "Item": item.serialize(),
        "ConditionExpression": "attribute_not_exists(#k)",
        "ExpressionAttributeNames": {"#k": item._hash_key_attribute().attr_name},
    }
    if return_old:
        put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return put


def _key_put(dedup: DedupItem, request_hash: str, now: datetime) -> dict:
    """The key's put, on condition that the payment may take it: absent, expired, or an
    abandoned claim of the same request left by the earlier version of ingestion
    (``IN_FLIGHT`` past its lease). Returns the item it found (``ALL_OLD``) otherwise."""
    put = _put_absent(dedup, return_old=True)
    put["ConditionExpression"] = (
        "attribute_not_exists(#k) OR #x < :now OR (#s = :flight AND #l < :lease AND #h = :hash)"
    )
    put["ExpressionAttributeNames"].update(
        {"#x": "expires_at", "#s": "state", "#l": "lease_until", "#h": "request_hash"}
    )
    put["ExpressionAttributeValues"] = {
        ":now": {"N": DedupItem.expires_at.serialize(now)},
        ":flight": {"S": "IN_FLIGHT"},
        ":lease": {"N": str(int(now.timestamp()))},
        ":hash": {"S": request_hash},
    }
    return put


def _existing_outcome(item: DedupItem, request_hash: str, own_txn_id: str = "") -> IngestResult:
    """What a request whose key is already known gets: the first response, or a 409."""
    if item.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request; use a new key."
        )
    if item.state == "DONE":
        body = json.loads(item.response_body)
        # our own write, applied by an attempt whose answer was lost: not a replay
        mine = bool(own_txn_id) and item.txn_id == own_txn_id
        return IngestResult(int(item.response_status), body, not mine)
    # a claim of the earlier version (a rolling deploy), its lease still running
    raise RequestInFlight("A request with this Idempotency-Key is being processed; retry shortly.")


def _known_outcome(dedup_key: str, request_hash: str) -> IngestResult | None:
    """The outcome of a key already used (replay or 409), None for a free key."""
    item = _dedup_get(dedup_key)
    return None if item is None else _existing_outcome(item, request_hash)


def _taken_key_outcome(dedup_key: str, request_hash: str, reason, own_txn_id: str):
    """The transaction was refused because the key is taken: its item comes with the
    cancellation (``ALL_OLD``), or is read when the store did not return it."""
    raw = getattr(reason, "raw_item", None)
    now = timezone.now()
    item = _live(DedupItem.from_raw_data(raw), now) if raw else _dedup_get(dedup_key)
    if item is None:  # expired or removed between the write and the read
        raise RequestInFlight("The Idempotency-Key is changing hands; retry.")
    return _existing_outcome(item, request_hash, own_txn_id)


def _validate(payment: PaymentInput, principal) -> tuple[LoanAccount, date]:
    """The loan, its branch's cut-off and the caller's scope in one indexed query (the
    unique loan number), in raw SQL: the ORM cost ten times the query's own time here."""
    loan = _payable_loan(payment.loan_number.upper(), principal)
    if loan is None:
        raise LoanNotFound(loan_not_found_message(payment.loan_number))
    return loan, payable_business_date(loan, payment.business_date)


def _columns(model, *names: str) -> tuple[str, ...]:
    """These columns in the model's order, as ``Model.from_db`` takes the values."""
    return tuple(f.attname for f in model._meta.concrete_fields if f.attname in names)


# What ingestion reads of a loan, and of its branch.
_LOAN_FIELDS = _columns(LoanAccount, "id", "loan_number", "status", "branch_id")
_BRANCH_FIELDS = _columns(Branch, "id", "cutoff_time")


def _payable_loan(loan_number: str, principal) -> LoanAccount | None:
    """The loan of this number that ``principal`` may see (``accounts.scoping``'s rule in
    its SQL form), as a LoanAccount of :data:`_LOAN_FIELDS` (the others deferred) with its
    branch of :data:`_BRANCH_FIELDS`."""
    scope, params = scope_sql(principal, 'l."branch_id"')
    columns = ", ".join(f'l."{name}"' for name in _LOAN_FIELDS)
    sql = (
        f'SELECT {columns}, b."cutoff_time" FROM "{LoanAccount._meta.db_table}" l '  # noqa: S608 - tables and columns of the models
        f'JOIN "{Branch._meta.db_table}" b ON b."id" = l."branch_id" '
        f'WHERE l."loan_number" = %s AND {scope} LIMIT 1'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [loan_number, *params])
        row = cursor.fetchone()
    if row is None:
        return None
    loan = LoanAccount.from_db(DEFAULT_DB_ALIAS, _LOAN_FIELDS, row[:-1])
    # the primary key comes first of a model's columns: the branch's id, then its cut-off
    branch = Branch.from_db(DEFAULT_DB_ALIAS, _BRANCH_FIELDS, (loan.branch_id, row[-1]))
    LoanAccount.branch.field.set_cached_value(loan, branch)
    return loan


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


class AcceptedItems(NamedTuple):
    txn: TransactionItem
    dedup: DedupItem
    queue_item: QueueItem
    audit_item: AuditEventItem


def accepted_items(
    payment: PaymentInput,
    *,
    loan: LoanAccount,
    business_date: date,
    source: str,
    principal,
    dedup_key: str,
    request_hash: str,
    now: datetime,
) -> AcceptedItems:
    """What an accepted payment stores (but its uniqueness items): the transaction, its key
    ``DONE`` with the response, its queue item and its intake audit event. Also what
    ``bench/ingest.py`` writes raw, so that both write the same items."""
    txn = TransactionItem(
        str(ULID()),
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
    dedup = DedupItem(
        dedup_key,
        request_hash=request_hash,
        state="DONE",
        txn_id=txn.txn_id,
        response_status=201,
        response_body=json.dumps(transaction_body(txn)),
        created_at=iso(now),
        expires_at=now + timedelta(days=settings.PAYMENTS_IDEMPOTENCY_DAYS),
    )
    return AcceptedItems(
        txn, dedup, queue_item_for(txn), _intake_audit(txn, principal=principal, now=now)
    )


def accepted_puts(
    items: AcceptedItems, *, request_hash: str, now: datetime, unique_items=()
) -> list[dict]:
    """The TransactWriteItems of an accepted payment, in wire form: the key (free), the
    transaction, its queue item and audit event (absent), its uniqueness items (absent, the
    holder returned). Their cancellation reasons come in this order (``payment_ingest``'s
    ``order``). Also what ``bench/ingest.py`` sends raw. A retried attempt sends the very
    same items (AWS checks that against the token)."""
    return [
        _key_put(items.dedup, request_hash, now),
        _put_absent(items.txn),
        _put_absent(items.queue_item),
        _put_absent(items.audit_item),
        *(_put_absent(item, return_old=True) for item in unique_items),
    ]


def payment_ingest(
    *, payment: PaymentInput, idempotency_key: str, principal, source: str
) -> IngestResult:
    """Accept one payment exactly once per (source, Idempotency-Key), and only once per
    receipt number of a branch and external reference of an API client.

    A refused payment (422, 404, or 409 ``duplicate_receipt`` /
    ``duplicate_external_reference``) stores nothing, so its key stays free: the same key
    and body then get the same refusal again (the receipt is still taken), and the same key
    with a corrected receipt number is accepted."""
    dedup_key = _dedup_key(source, idempotency_key)
    request_hash = _hash(payment.canonical())
    try:
        loan, business_date = _validate(payment, principal)
    except (LoanNotFound, PaymentRejected):
        # a key already used keeps its first answer (the loan may have closed since)
        known = _known_outcome(dedup_key, request_hash)
        if known is not None:
            return known
        raise
    now = timezone.now()
    txn, dedup, queue_item, audit_item = accepted_items(
        payment,
        loan=loan,
        business_date=business_date,
        source=source,
        principal=principal,
        dedup_key=dedup_key,
        request_hash=request_hash,
        now=now,
    )
    txn_id = txn.txn_id
    body = transaction_body(txn)
    uniques = _unique_keys(payment, branch_id=loan.branch_id, source=source)

    puts = accepted_puts(
        AcceptedItems(txn, dedup, queue_item, audit_item),
        request_hash=request_hash,
        now=now,
        unique_items=[
            UniqueKeyItem(unique.key, txn_id=txn_id, created_at=iso(now)) for unique in uniques
        ],
    )
    order = ["dedup", "txn", "queue", "audit", *uniques]
    try:
        # the token makes a retried attempt whose first try was applied a success on AWS
        transact_put(puts, client_request_token=txn_id)
    except TransactWriteError as exc:
        failed = {
            part: reason
            for part, reason in zip(order, exc.cancellation_reasons or (), strict=False)
            if reason is not None and reason.code == "ConditionalCheckFailed"
        }
        if "dedup" in failed:
            outcome = _taken_key_outcome(dedup_key, request_hash, failed["dedup"], txn_id)
            if not outcome.replayed:  # our own write after all (see _existing_outcome)
                _enqueue_posting(txn_id)
            return outcome
        taken = [unique for unique in uniques if unique in failed]
        if taken:
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
