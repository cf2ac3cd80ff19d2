"""Reads of notifications. Expired notifications are never returned, whether or not
DynamoDB's TTL has deleted them yet."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone
from pynamodb.exceptions import DoesNotExist, QueryError

from .channels import development_outbox
from .ddb_models import NotificationItem, status_channel
from .exceptions import InvalidRecipient
from .recipients import recipient_clean, recipient_mask

_CURSOR_KEYS = {"notification_id", "status_channel", "scheduled_at"}


@dataclass(frozen=True)
class NotificationPage:
    items: list[NotificationItem]
    next_cursor: str | None  # opaque; pass it back to get the next page


def notification_get(*, notification_id: str) -> NotificationItem | None:
    try:
        item = NotificationItem.get(notification_id, consistent_read=True)
    except DoesNotExist:
        return None
    return None if item.is_expired(timezone.now()) else item


def _cursor_encode(key: dict | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _cursor_decode(cursor: str | None, partition: str) -> dict | None:
    """The last evaluated key in a cursor from a URL; None for anything not ours."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(key, dict) or set(key) != _CURSOR_KEYS:
        return None
    if not all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()
    ):
        return None
    if key["status_channel"]["S"] != partition:
        return None
    return key


def notification_page(
    *, status: str, channel: str, page_size: int = 50, cursor: str | None = None
) -> NotificationPage:
    """One page of the notifications with this status on this channel, latest scheduled
    first, from the ``status_channel`` index."""
    partition = status_channel(status, channel)
    results = NotificationItem.by_status_channel.query(
        partition,
        scan_index_forward=False,
        filter_condition=NotificationItem.expires_at > timezone.now(),
        limit=page_size,
        page_size=page_size,
        last_evaluated_key=_cursor_decode(cursor, partition),
    )
    try:
        items = list(results)
    except QueryError:
        if cursor is None:
            raise
        return notification_page(status=status, channel=channel, page_size=page_size)
    return NotificationPage(items=items, next_cursor=_cursor_encode(results.last_evaluated_key))


def notifications_to(*, recipients: Iterable[tuple[str, str]], limit: int = 10) -> list[dict]:
    """The latest ``limit`` notifications sent to any of ``recipients`` (``(channel,
    address)`` pairs, e.g. a customer's mobile and email), newest first, as rows for staff:
    the address masked, never the body. One query of the ``recipient`` index per address."""
    now = timezone.now()
    items = []
    for channel, address in recipients:
        try:
            cleaned = recipient_clean(channel=channel, recipient=address)
        except InvalidRecipient:
            continue
        items.extend(
            NotificationItem.by_recipient.query(
                cleaned,
                scan_index_forward=False,
                filter_condition=NotificationItem.expires_at > now,
                limit=limit,
            )
        )
    items.sort(key=lambda item: item.created_at, reverse=True)
    return [
        {
            "notification_id": item.notification_id,
            "channel": item.channel,
            "template_code": item.template_code,
            "message": item.template_code.replace("_", " ").capitalize(),
            "recipient": item.recipient_masked,
            "status": item.status,
            "created_at": item.created_at,
            "sent_at": item.sent_at,
            "attempts": int(item.attempts or 0),
        }
        for item in items[:limit]
    ]


def development_outbox_masked(*, limit: int = 50) -> list[dict]:
    """The development provider's outbox for staff: recipients masked."""
    return [
        {
            **entry,
            "recipient": recipient_mask(channel=entry["channel"], recipient=entry["recipient"]),
        }
        for entry in development_outbox(limit=limit)
    ]
