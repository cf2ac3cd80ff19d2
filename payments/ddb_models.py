"""Payment transactions, idempotency keys, uniqueness keys and the posting queue, in DynamoDB.

Amounts are integer paise (``NumberAttribute`` holding ints only, never floats).
Times used as sort keys are UTC ISO strings of one fixed format, so that they sort.
"""

from datetime import date, datetime

from django.conf import settings
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.constants import STREAM_NEW_IMAGE
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from dynamo.registry import register
from dynamo.shards import in_parallel, shard_key, shard_keys


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
        # Read by the stream processor (streams/) to keep today's DCR figures current.
        stream_view_type = STREAM_NEW_IMAGE

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


POSTING = "POSTING"  # the queue type of posting work


class QueueStatus:
    READY = "READY"
    LEASED = "LEASED"
    DONE = "DONE"
    DEAD = "DEAD"


class QueueShardIndex(GlobalSecondaryIndex):
    """Live work by status, soonest due first. The key ``{queue_type}#{status}#{shard}`` is
    spread over ``PAYMENTS_QUEUE_SHARDS`` partitions (a handful of values would put every
    writer and every sweep on one partition); a DONE item leaves the index (sparse)."""

    class Meta:
        index_name = "queue_shard"
        projection = AllProjection()

    queue_shard = UnicodeAttribute(hash_key=True)
    next_attempt_at = UnicodeAttribute(range_key=True)


@register
class QueueItem(Model):
    """Posting work: READY > LEASED > DONE, back to READY with backoff, or DEAD. A DONE
    item expires after ``PAYMENTS_QUEUE_RETENTION_DAYS`` (the TTL ``expires_at``); DynamoDB
    deletes expired items late, so every read ignores them (``queue_live``). Its status
    changes only through ``queue_status_set``, which keeps ``queue_shard`` in step."""

    class Meta:
        table_name = "txn_queue"

    item_id = UnicodeAttribute(hash_key=True)
    queue_status = UnicodeAttribute()  # "{queue_type}#{status}"
    queue_shard = UnicodeAttribute(null=True)  # queue_status + "#{shard}"; absent once DONE
    next_attempt_at = UnicodeAttribute()
    txn_id = UnicodeAttribute()
    loan_number = UnicodeAttribute()
    branch_id = NumberAttribute()
    # What the posting needs of its transaction, copied in the same TransactWriteItems (a
    # transaction does not change before it is posted), so that posting reads nothing
    # else. Absent on items from before they were copied: posting then reads the
    # transaction.
    loan_id = NumberAttribute(null=True)
    amount_paise = NumberAttribute(null=True)
    business_date = UnicodeAttribute(null=True)
    mode = UnicodeAttribute(null=True)
    receipt_number = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    lease_owner = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)  # set when the item is DONE

    by_shard = QueueShardIndex()


def queue_live(now: datetime) -> Condition:
    """Queue items that have not expired (a filter or a write condition)."""
    return QueueItem.expires_at.does_not_exist() | (QueueItem.expires_at > now)


def _queue_shards() -> int:
    return settings.PAYMENTS_QUEUE_SHARDS


def queue_status_set(item_id: str, status: str, queue_type: str = POSTING) -> list[Action]:
    """The update actions that move an item to ``status``: its status and its shard key
    (removed for DONE, so that finished work leaves the index)."""
    value = f"{queue_type}#{status}"
    if status == QueueStatus.DONE:
        return [QueueItem.queue_status.set(value), QueueItem.queue_shard.remove()]
    return [
        QueueItem.queue_status.set(value),
        QueueItem.queue_shard.set(shard_key(value, item_id, _queue_shards())),
    ]


def queue_item_for(txn: TransactionItem) -> QueueItem:
    """The READY posting item of a new transaction (written in its TransactWriteItems)."""
    value = f"{POSTING}#{QueueStatus.READY}"
    return QueueItem(
        txn.txn_id,
        queue_status=value,
        queue_shard=shard_key(value, txn.txn_id, _queue_shards()),
        next_attempt_at=txn.created_at,
        txn_id=txn.txn_id,
        loan_number=txn.loan_number,
        branch_id=txn.branch_id,
        loan_id=txn.loan_id,
        amount_paise=txn.amount_paise,
        business_date=txn.business_date,
        mode=txn.mode,
        receipt_number=txn.receipt_number,
        attempts=0,
        created_at=txn.created_at,
        updated_at=txn.created_at,
    )


def queue_partitions(status: str, queue_type: str = POSTING) -> list[str]:
    """Every shard key of a status, e.g. ``POSTING#READY#00`` to ``POSTING#READY#15``."""
    return shard_keys(f"{queue_type}#{status}", _queue_shards())


def queue_query(status: str, *args, limit: int | None = None, **kwargs) -> list[QueueItem]:
    """Up to ``limit`` items of each shard of ``status`` (a Query each, in parallel), all
    shards' together, soonest due first. Arguments as ``QueueShardIndex.query``."""
    per_shard = in_parallel(
        lambda key: list(QueueItem.by_shard.query(key, *args, limit=limit, **kwargs)),
        queue_partitions(status),
    )
    return sorted((item for items in per_shard for item in items), key=lambda i: i.next_attempt_at)


def queue_count(status: str, **kwargs) -> int:
    """Items of ``status`` over every shard (a Query each, in parallel); ``limit`` caps
    each shard's count."""
    return sum(
        in_parallel(lambda key: QueueItem.by_shard.count(key, **kwargs), queue_partitions(status))
    )
