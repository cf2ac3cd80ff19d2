from __future__ import annotations

import datetime as dt

from pynamodb.attributes import (
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from core.clock import parse_iso
from dynamo.registry import register


def status_channel(status: str, channel: str) -> str:
    return f"{status}#{channel}"


class StatusChannelIndex(GlobalSecondaryIndex):
    """``{status}#{channel}`` + ``scheduled_at``: the due work of a channel, and the staff
    view by status. All attributes are projected so that lists need no second read."""

    class Meta:
        index_name = "status_channel"
        projection = AllProjection()

    status_channel = UnicodeAttribute(hash_key=True)
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
