"""Each presentation of a debit to the bank and its result.

``execution_id`` is deterministic (``{presentation id}-{attempt}``), so presenting again
after a crash finds the item instead of creating a second one.
"""

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from dynamo.registry import register

DUE_DATE_SHARDS = 8


class MandateDueIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "mandate_due"
        projection = AllProjection()

    mandate_id = UnicodeAttribute(hash_key=True)
    due_attempt = UnicodeAttribute(range_key=True)  # "{due_date}#{attempt:02d}"


class DueDateIndex(GlobalSecondaryIndex):
    """Write-sharded: a whole day of all branches never lands in one partition."""

    class Meta:
        index_name = "due_date"
        projection = AllProjection()

    due_date_shard = UnicodeAttribute(hash_key=True)  # "{due_date}#{shard}"
    execution_id = UnicodeAttribute(range_key=True)


@register
class MandateExecutionItem(Model):
    class Meta:
        table_name = "mandate_executions"

    execution_id = UnicodeAttribute(hash_key=True)
    mandate_id = UnicodeAttribute()
    due_attempt = UnicodeAttribute()
    due_date_shard = UnicodeAttribute()
    presentation_id = NumberAttribute()
    loan_number = UnicodeAttribute()
    branch_id = NumberAttribute()
    partner_code = UnicodeAttribute()
    batch_reference = UnicodeAttribute(null=True)
    umrn = UnicodeAttribute()
    due_date = UnicodeAttribute()
    attempt = NumberAttribute()
    amount_paise = NumberAttribute()
    status = UnicodeAttribute()  # SCHEDULED, PRESENTED, SUCCESS, BOUNCED, CANCELLED
    return_code = UnicodeAttribute(null=True)
    return_reason = UnicodeAttribute(null=True)
    txn_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    presented_at = UnicodeAttribute(null=True)
    result_at = UnicodeAttribute(null=True)

    by_mandate = MandateDueIndex()
    by_due_date = DueDateIndex()
