import datetime
import zlib

from django.utils import timezone
from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from dynamo.registry import register

DAY_SHARDS = 8


def calendar_day(moment: datetime.datetime) -> datetime.date:
    """The calendar date in settings.TIME_ZONE (IST) of a moment, whatever zone is active
    (not the branch cut-off's business date)."""
    return timezone.localdate(moment, timezone.get_default_timezone())


def day_key(day: datetime.date, shard: int) -> str:
    return f"day#{day.isoformat()}#{shard}"


def day_shard(event_id: str) -> int:
    return zlib.crc32(event_id.encode()) % DAY_SHARDS


class ActorIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "actor"
        projection = AllProjection()

    actor_id = UnicodeAttribute(hash_key=True)
    ts = UnicodeAttribute(range_key=True)


class DayIndex(GlobalSecondaryIndex):
    """``day#{YYYY-MM-DD}#{shard}``: a day's events spread over DAY_SHARDS partitions."""

    class Meta:
        index_name = "day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    ts = UnicodeAttribute(range_key=True)


@register
class AuditEventItem(Model):
    """One audit event. ``sk`` is ``{ts}#{event_id}`` so an entity's events sort by time and
    two events in the same microsecond never collide. ``ts`` is UTC ISO-8601 with
    microseconds (sorts as text); ``day`` is the IST date. ``changes`` is JSON text of
    ``{field: [before, after]}`` with masked values and no floats (amounts are strings).
    ``expires_at`` is the TTL; reads also check it (DynamoDB deletes expired items late)."""

    class Meta:
        table_name = "audit_events"

    entity = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event_id = UnicodeAttribute()
    ts = UnicodeAttribute()
    day = UnicodeAttribute()
    action = UnicodeAttribute()
    entity_repr = UnicodeAttribute(default="")
    actor_id = UnicodeAttribute(null=True)  # sparse: system events are not in the actor index
    actor_repr = UnicodeAttribute(default="")
    request_id = UnicodeAttribute(default="")
    ip = UnicodeAttribute(null=True)
    changes = UnicodeAttribute(default="{}")
    remarks = UnicodeAttribute(default="")
    expires_at = TTLAttribute()

    by_actor = ActorIndex()
    by_day = DayIndex()
