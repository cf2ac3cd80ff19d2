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

from dynamo.shards import DONE, merged_page

from .channels import development_outbox
from .ddb_models import NotificationItem, status_partitions
from .exceptions import InvalidRecipient
from .recipients import recipient_clean, recipient_mask

_CURSOR_KEYS = {"notification_id", "status_channel_shard", "scheduled_at"}


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


def _cursor_encode(state: dict | None) -> str | None:
    if not state:
        return None
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()


def _start_key_valid(key, partition: str) -> bool:
    if key is None or key == DONE:
        return True
    if not isinstance(key, dict) or set(key) != _CURSOR_KEYS:
        return False
    if not all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()
    ):
        return False
    return key["status_channel_shard"]["S"] == partition


def _cursor_decode(cursor: str | None, partitions: list[str]) -> dict | None:
    """Each shard's position from a cursor in a URL; None for anything not ours."""
    if not cursor:
        return None
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(state, dict) or set(state) != set(partitions):
        return None
    if not all(_start_key_valid(key, partition) for partition, key in state.items()):
        return None
    return state


def notification_page(
    *, status: str, channel: str, page_size: int = 50, cursor: str | None = None
) -> NotificationPage:
    """One page of the notifications with this status on this channel, latest scheduled
    first, from every shard of the ``status_channel_shard`` index, merged."""
    partitions = status_partitions(status, channel)
    live = NotificationItem.expires_at > timezone.now()

    def fetch(key: str, start: dict | None, count: int) -> tuple[list, dict | None]:
        results = NotificationItem.by_status_channel.query(
            key,
            scan_index_forward=False,
            filter_condition=live,
            limit=count,
            page_size=count,
            last_evaluated_key=start,
        )
        return list(results), results.last_evaluated_key

    def page(state: dict | None):
        return merged_page(
            fetch=fetch,
            keys=partitions,
            state=state,
            limit=page_size,
            order=lambda item: (item.scheduled_at, item.notification_id),
            reverse=True,
            last_key=lambda item: {
                "notification_id": {"S": item.notification_id},
                "status_channel_shard": {"S": item.status_channel_shard},
                "scheduled_at": {"S": item.scheduled_at},
            },
        )

    state = _cursor_decode(cursor, partitions)
    try:
        items, next_state = page(state)
    except QueryError:
        if state is None:
            raise
        items, next_state = page(None)
    return NotificationPage(items=items, next_cursor=_cursor_encode(next_state))


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
