"""Payment transactions, idempotency keys, uniqueness keys and the posting queue, in DynamoDB.

Amounts are integer paise (``NumberAttribute`` holding ints only, never floats).
Times used as sort keys are UTC ISO strings of one fixed format, so that they sort.
"""

from datetime import date, datetime

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from dynamo.registry import register


def branch_day_key(branch_id: int, business_date: date) -> str:
    """The ``branch_day`` index's partition: one branch's transactions of one business date,
    ``{branch_id}#{business_date}``. Every writer and reader builds it here."""
    return f"{int(branch_id)}#{business_date.isoformat()}"


class BranchDayIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "branch_day"
        projection = AllProjection()

    branch_day = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class LoanAccountIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "loan_account"
        projection = AllProjection()

    loan_number = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


@register
class TransactionItem(Model):
    class Meta:
        table_name = "transactions"

    txn_id = UnicodeAttribute(hash_key=True)
    branch_day = UnicodeAttribute()  # "{branch_id}#{business_date}"
    created_at = UnicodeAttribute()
    loan_number = UnicodeAttribute()
    loan_id = NumberAttribute()
    branch_id = NumberAttribute()
    business_date = UnicodeAttribute()
    amount_paise = NumberAttribute()
    mode = UnicodeAttribute()
    status = UnicodeAttribute()  # RECEIVED, POSTED, FAILED, REVERSED
    receipt_number = UnicodeAttribute(null=True)
    collector = UnicodeAttribute(null=True)
    external_reference = UnicodeAttribute(null=True)
    source = UnicodeAttribute()  # who sent it: "api:<client>", "user:<id>", "nach:<partner>"
    failure_reason = UnicodeAttribute(null=True)
    posted_at = UnicodeAttribute(null=True)
    reversed_at = UnicodeAttribute(null=True)

    by_branch_day = BranchDayIndex()
    by_loan = LoanAccountIndex()


@register
class DedupItem(Model):
    """One idempotency key: the request's hash and the first response, written ``DONE`` in
    the payment's own TransactWriteItems. ``IN_FLIGHT`` with ``claim_token`` and
    ``lease_until`` is a claim of the earlier ingestion (a claim, then the transaction),
    still understood during a rolling deploy and until such keys expire."""

    class Meta:
        table_name = "dedup"

    dedup_key = UnicodeAttribute(hash_key=True)  # sha256(source + idempotency key)
    request_hash = UnicodeAttribute()
    state = UnicodeAttribute()  # IN_FLIGHT, DONE
    claim_token = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)  # epoch seconds
    txn_id = UnicodeAttribute(null=True)
    response_status = NumberAttribute(null=True)
    response_body = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    expires_at = TTLAttribute()


@register
class UniqueKeyItem(Model):
    """A value only one payment may carry: a receipt number per branch
    (``receipt#{branch_id}#{RECEIPT}``) or an external reference per API client
    (``extref#api:{client_id}#{reference}``). Written in the payment's own
    TransactWriteItems with the condition "absent", so of two payments sent at the same
    moment exactly one can take it. Kept for as long as the transaction (no TTL)."""

    class Meta:
        table_name = "txn_unique"

    unique_key = UnicodeAttribute(hash_key=True)
    txn_id = UnicodeAttribute()
    created_at = UnicodeAttribute()


class QueueStatusIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "queue_status"
        projection = AllProjection()

    queue_status = UnicodeAttribute(hash_key=True)  # "{queue_type}#{status}"
    next_attempt_at = UnicodeAttribute(range_key=True)


@register
class QueueItem(Model):
    """Posting work: READY > LEASED > DONE, back to READY with backoff, or DEAD. A DONE
    item expires after ``PAYMENTS_QUEUE_RETENTION_DAYS`` (the TTL ``expires_at``); DynamoDB
    deletes expired items late, so every read ignores them (``queue_live``)."""

    class Meta:
        table_name = "txn_queue"

    item_id = UnicodeAttribute(hash_key=True)
    queue_status = UnicodeAttribute()
    next_attempt_at = UnicodeAttribute()
    txn_id = UnicodeAttribute()
    loan_number = UnicodeAttribute()
    branch_id = NumberAttribute()
    attempts = NumberAttribute(default=0)
    lease_owner = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)  # set when the item is DONE

    by_status = QueueStatusIndex()


def queue_live(now: datetime) -> Condition:
    """Queue items that have not expired (a filter or a write condition)."""
    return QueueItem.expires_at.does_not_exist() | (QueueItem.expires_at > now)
