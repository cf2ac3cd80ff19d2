from __future__ import annotations

import datetime as dt

from django.conf import settings
from pynamodb.attributes import (
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from core.clock import parse_iso
from dynamo.registry import register
from dynamo.shards import shard_key, shard_keys


def status_channel(status: str, channel: str) -> str:
    return f"{status}#{channel}"


def _shards() -> int:
    return settings.NOTIFICATIONS_QUEUE_SHARDS


def status_partitions(status: str, channel: str) -> list[str]:
    """Every shard key of a status and channel, ``QUEUED#SMS#00`` to ``QUEUED#SMS#15``."""
    return shard_keys(status_channel(status, channel), _shards())


class StatusChannelIndex(GlobalSecondaryIndex):
    """``{status}#{channel}#{shard}`` + ``scheduled_at``: the due work of a channel, and
    the staff view by status, spread over ``NOTIFICATIONS_QUEUE_SHARDS`` partitions (one
    key a status and channel would put every sender on one partition). All attributes are
    projected so that lists need no second read."""

    class Meta:
        index_name = "status_channel_shard"
        projection = AllProjection()

    status_channel_shard = UnicodeAttribute(hash_key=True)
    scheduled_at = UnicodeAttribute(range_key=True)


class RecipientIndex(GlobalSecondaryIndex):
    """``recipient`` + ``created_at``: what was sent to one address, newest first (a
    customer's page lists the messages to their mobile and email)."""

    class Meta:
        index_name = "recipient"
        projection = AllProjection()

    recipient = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


@register
class NotificationItem(Model):
    """One SMS, email or push message, rendered, with its delivery state.

    ``expires_at`` is the TTL (retention); every read also checks it, because DynamoDB
    deletes expired items only eventually. ``recipient`` is the full address, needed to
    send; everything shown to people uses ``recipient_masked``.
    """

    class Meta:
        table_name = "notifications"

    notification_id = UnicodeAttribute(hash_key=True)  # a ULID
    channel = UnicodeAttribute()
    template_code = UnicodeAttribute()
    recipient = UnicodeAttribute()
    recipient_masked = UnicodeAttribute()
    subject = UnicodeAttribute(null=True)
    body = UnicodeAttribute()
    entity = UnicodeAttribute(null=True)  # "{app_label.model}#{pk}", e.g. "accounts.user#5"
    status = UnicodeAttribute()
    status_channel = UnicodeAttribute()
    status_channel_shard = UnicodeAttribute()  # status_channel + "#{shard}" (the index key)
    scheduled_at = UnicodeAttribute()  # iso(); due time of QUEUED (and retried) items
    attempts = NumberAttribute(default=0)
    last_error = UnicodeAttribute(null=True)
    provider_message_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    sent_at = UTCDateTimeAttribute(null=True)
    lease_until = UTCDateTimeAttribute(null=True)  # a SENDING claim is void after this
    expires_at = TTLAttribute()

    by_status_channel = StatusChannelIndex()
    by_recipient = RecipientIndex()

    @property
    def scheduled_for(self) -> dt.datetime:
        return parse_iso(self.scheduled_at)

    def is_expired(self, now: dt.datetime) -> bool:
        return self.expires_at <= now

    @classmethod
    def status_set(cls, notification_id: str, status: str, channel: str) -> list[Action]:
        """The update actions that move a notification to ``status``, its index keys in step."""
        keys = status_keys(notification_id, status, channel)
        return [getattr(cls, name).set(value) for name, value in keys.items()]


def status_keys(notification_id: str, status: str, channel: str) -> dict[str, str]:
    """A notification's status and the index keys that go with it."""
    value = status_channel(status, channel)
    return {
        "status": status,
        "status_channel": value,
        "status_channel_shard": shard_key(value, notification_id, _shards()),
    }
