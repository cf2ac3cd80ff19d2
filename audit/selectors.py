"""Reads of the audit trail: always a DynamoDB Query on the table or one of its indexes,
never a Scan. Pages are newest first; the next page is an opaque signed token holding
DynamoDB start keys (a token of another query, or a tampered one, starts over)."""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.scoping import scope_queryset, visible_branch_ids
from core.clock import iso, parse_iso

from . import tracking
from .ddb_models import DAY_SHARDS, AuditEventItem, day_key
from .models import AuditMessage

BROWSE_PERMISSION = "audit.view_events"
PAGE_SIZE = 50
_TOKEN_SALT = "audit.events.page"  # noqa: S105 - a signing namespace, not a secret
_DONE = "done"
_TABLE_KEYS = ("entity", "sk")
_ACTOR_KEYS = (*_TABLE_KEYS, "actor_id", "ts")
_DAY_KEYS = (*_TABLE_KEYS, "day", "ts")


@dataclass(frozen=True)
class AuditEvent:
    """An event as screens show it, from DynamoDB or from a still pending outbox message."""

    event_id: str
    entity: str
    entity_repr: str
    action: str
    actor_id: int | None
    actor_repr: str
    request_id: str
    ip: str | None
    occurred_at: datetime.datetime
    changes: dict[str, list]
    remarks: str = ""
    pending: bool = False

    @classmethod
    def from_item(cls, item: AuditEventItem) -> AuditEvent:
        return cls(
            event_id=item.event_id,
            entity=item.entity,
            entity_repr=item.entity_repr or "",
            action=item.action,
            actor_id=int(item.actor_id) if item.actor_id else None,
            actor_repr=item.actor_repr or "",
            request_id=item.request_id or "",
            ip=item.ip,
            occurred_at=parse_iso(item.ts),
            changes=json.loads(item.changes or "{}"),
            remarks=item.remarks or "",
        )

    @classmethod
    def from_row(cls, row: AuditMessage) -> AuditEvent:
        return cls(
            event_id=row.event_id,
            entity=row.entity,
            entity_repr=row.entity_repr,
            action=row.action,
            actor_id=row.actor_id,
            actor_repr=row.actor_repr,
            request_id=row.request_id,
            ip=row.ip,
            occurred_at=row.occurred_at,
            changes=row.changes,
            remarks=row.remarks,
            pending=row.is_pending,
        )

    @property
    def change_rows(self) -> list[tuple[str, Any, Any]]:
        return [(name, pair[0], pair[1]) for name, pair in sorted(self.changes.items())]


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    next_token: str | None = None


# --- One entity ------------------------------------------------------------------------


def audit_events_for_entity(
    *,
    entity: str,
    limit: int = PAGE_SIZE,
    page_token: str | None = None,
    day: datetime.date | None = None,
    actor_id: int | None = None,
    include_pending: bool = True,
) -> EventPage:
    """An entity's events, newest first. The first page also shows its outbox messages not
    yet relayed to DynamoDB (flagged ``pending``), so a change is visible at once."""
    query = f"entity|{entity}|{day}|{actor_id}"
    cursor = _read_token(page_token, query)
    pending = []
    if include_pending and cursor is None:
        # Read pending events before DynamoDB: one relayed in between then shows up twice
        # (removed below by event id) rather than not at all.
        pending = audit_pending_for_entity(entity=entity, day=day, actor_id=actor_id)
    range_condition = None
    if day is not None:
        start, end = _day_bounds(day)
        range_condition = AuditEventItem.sk.between(start, end)
    filter_condition = AuditEventItem.actor_id == str(actor_id) if actor_id is not None else None
    items, next_cursor = _query_page(
        AuditEventItem,
        entity,
        key_names=_TABLE_KEYS,
        limit=limit,
        cursor=cursor,
        range_key_condition=range_condition,
        filter_condition=filter_condition,
    )
    relayed = [AuditEvent.from_item(item) for item in items if _live(item)]
    stored = {event.event_id for event in relayed}
    events = [event for event in pending if event.event_id not in stored] + relayed
    events.sort(key=lambda e: (e.occurred_at, e.event_id), reverse=True)
    return EventPage(events, _write_token(query, next_cursor))


def audit_pending_for_entity(
    *, entity: str, day: datetime.date | None = None, actor_id: int | None = None
) -> list[AuditEvent]:
    """An entity's events still in the outbox (the ``outbox_pending_ref`` index)."""
    rows = AuditMessage.objects.filter(ref=entity, done_at__isnull=True)
    if day is not None:
        start, end = _day_range(day)
        rows = rows.filter(created_at__gte=start, created_at__lt=end)
    if actor_id is not None:
        rows = rows.filter(payload__actor_id=actor_id)
    return [AuditEvent.from_row(row) for row in rows.order_by("-created_at")[:200]]


# --- One actor -------------------------------------------------------------------------


def audit_events_by_actor(
    *,
    actor_id: int,
    limit: int = PAGE_SIZE,
    page_token: str | None = None,
    day: datetime.date | None = None,
) -> EventPage:
    """What one user did, newest first (the ``actor`` index)."""
    query = f"actor|{actor_id}|{day}"
    cursor = _read_token(page_token, query)
    range_condition = None
    if day is not None:
        start, end = _day_bounds(day)
        range_condition = AuditEventItem.ts.between(start, end)
    items, next_cursor = _query_page(
        AuditEventItem.by_actor,
        str(actor_id),
        key_names=_ACTOR_KEYS,
        limit=limit,
        cursor=cursor,
        range_key_condition=range_condition,
    )
    events = [AuditEvent.from_item(item) for item in items if _live(item)]
    return EventPage(events, _write_token(query, next_cursor))


# --- One day ---------------------------------------------------------------------------


def audit_events_by_day(
    *, day: datetime.date, limit: int = PAGE_SIZE, page_token: str | None = None
) -> EventPage:
    """Everything that happened on an IST day, newest first: one Query per shard of the
    ``day`` index, merged by time. The token keeps each shard's own position."""
    query = f"day|{day.isoformat()}"
    state = _read_token(page_token, query) or dict.fromkeys(map(str, range(DAY_SHARDS)))
    fetched: dict[str, list[AuditEventItem]] = {}
    for shard, cursor in state.items():
        if cursor == _DONE:
            continue
        fetched[shard], _ = _query_page(
            AuditEventItem.by_day,
            day_key(day, int(shard)),
            key_names=_DAY_KEYS,
            limit=limit,
            cursor=cursor,
        )
    merged = sorted(
        ((item, shard) for shard, items in fetched.items() for item in items),
        key=lambda pair: (pair[0].ts, pair[0].event_id),
        reverse=True,
    )
    page = merged[:limit]
    new_state = {}
    for shard, cursor in state.items():
        if cursor == _DONE:
            new_state[shard] = _DONE
            continue
        used = [item for item, from_shard in page if from_shard == shard]
        if len(used) == len(fetched[shard]) and len(fetched[shard]) <= limit:
            new_state[shard] = _DONE  # everything this shard had is on this page or before
        elif used:
            new_state[shard] = _key_of(used[-1], _DAY_KEYS)
        else:
            new_state[shard] = cursor
    more = any(cursor != _DONE for cursor in new_state.values())
    events = [AuditEvent.from_item(item) for item, _ in page if _live(item)]
    return EventPage(events, _write_token(query, new_state) if more else None)


# --- The admin's browser ---------------------------------------------------------------


def user_can_browse_audit(user) -> bool:
    return bool(user and user.is_active and user.has_perm(BROWSE_PERMISSION))


def audit_events_browse(
    *,
    user,
    entity: str | None = None,
    actor_id: int | None = None,
    day: datetime.date | None = None,
    limit: int = PAGE_SIZE,
    page_token: str | None = None,
) -> EventPage:
    """The audit browser: by entity, else by actor, else by day (the most selective index;
    the other criteria narrow it). Needs ``audit.view_events``; a user whose scope is
    limited to some branches sees only events of objects in their scope, and nothing tells
    them how many others matched."""
    if not user_can_browse_audit(user):
        raise PermissionDenied
    if entity:
        page = audit_events_for_entity(
            entity=entity, day=day, actor_id=actor_id, limit=limit, page_token=page_token
        )
    elif actor_id is not None:
        page = audit_events_by_actor(actor_id=actor_id, day=day, limit=limit, page_token=page_token)
    elif day is not None:
        page = audit_events_by_day(day=day, limit=limit, page_token=page_token)
    else:
        raise ValueError("give an entity, an actor or a day")
    return EventPage(_in_scope(page.events, user), page.next_token)


# --- Internals -------------------------------------------------------------------------


def _query_page(
    target, hash_key: str, *, key_names, limit: int, cursor, **conditions
) -> tuple[list[AuditEventItem], dict | None]:
    """One page, newest first: fetches one item more than asked to know whether another
    page exists; the next page starts after the last item shown."""
    results = list(
        target.query(
            hash_key,
            scan_index_forward=False,
            limit=limit + 1,
            last_evaluated_key=_start_key(cursor),
            **{k: v for k, v in conditions.items() if v is not None},
        )
    )
    items = results[:limit]
    next_cursor = _key_of(items[-1], key_names) if len(results) > limit else None
    return items, next_cursor


def _key_of(item: AuditEventItem, key_names) -> dict[str, str]:
    return {name: getattr(item, name) for name in key_names}


def _start_key(cursor: dict | None) -> dict | None:
    return {name: {"S": value} for name, value in cursor.items()} if cursor else None


def _write_token(query: str, cursor) -> str | None:
    if cursor is None:
        return None
    return signing.dumps({"q": query, "c": cursor}, salt=_TOKEN_SALT, compress=True)


def _read_token(token: str | None, query: str):
    if not token:
        return None
    try:
        payload = signing.loads(token, salt=_TOKEN_SALT)
    except signing.BadSignature:
        return None
    return payload.get("c") if payload.get("q") == query else None


def _live(item: AuditEventItem) -> bool:
    """DynamoDB deletes expired items late: never show one."""
    return item.expires_at is None or item.expires_at > timezone.now()


def _day_range(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """The IST day as aware datetimes [start, end)."""
    tz = timezone.get_default_timezone()
    start = datetime.datetime.combine(day, datetime.time.min, tzinfo=tz)
    return start, start + datetime.timedelta(days=1)


def _day_bounds(day: datetime.date) -> tuple[str, str]:
    """The IST day as ``ts`` text, both ends inclusive (DynamoDB's BETWEEN)."""
    start, end = _day_range(day)
    return iso(start), iso(end - datetime.timedelta(microseconds=1)) + "~"


def _in_scope(events: list[AuditEvent], user) -> list[AuditEvent]:
    """Keep the events of objects the user may see (``accounts.scoping``). Objects of models
    without a branch, and deleted objects, are visible only to users who see everything."""
    if visible_branch_ids(user) is None:
        return events
    pks_by_label: dict[str, set[str]] = defaultdict(set)
    for event in events:
        try:
            label, pk = tracking.parse_entity(event.entity)
        except ValueError:
            continue
        pks_by_label[label].add(pk)
    visible: set[str] = set()
    for label, pks in pks_by_label.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            continue
        if not hasattr(model, "SCOPE_BRANCH_PATH"):
            continue
        try:
            queryset = scope_queryset(model._default_manager.filter(pk__in=pks), user)
            visible.update(f"{label}#{pk}" for pk in queryset.values_list("pk", flat=True))
        except (ValueError, TypeError, ValidationError):
            continue
    return [event for event in events if event.entity in visible]
