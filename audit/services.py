"""Writes of the audit trail: outbox messages (with the change, in its transaction),
explicit events for workflow transitions, and their delivery to DynamoDB (the outbox's
``audit`` topic handler, registered in ``AuditConfig.ready()``)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from pynamodb.exceptions import PutError, PynamoDBException

from core import context
from core.clock import iso
from core.models import OutboxMessage
from core.outbox import outbox_add, outbox_add_many

from . import tracking
from .ddb_models import AuditEventItem, calendar_day, day_key, day_shard
from .exceptions import AuditStoreUnavailable
from .models import AUDIT_TOPIC, AuditMessage, new_event_id

logger = logging.getLogger(__name__)

# DynamoDB refuses this one item (too large, malformed): it stays pending (retried, shown
# with its error), and the others are relayed. Any other error means the store is
# unavailable: the rest of the batch waits for a later relay.
_ITEM_REFUSED = {"ValidationException", "ItemCollectionSizeLimitExceededException"}


def audit_outbox_add(
    *,
    entity: str,
    action: str,
    changes: dict[str, list] | None = None,
    entity_repr: str = "",
    remarks: str = "",
    actor: Any = None,
    using: str | None = None,
) -> AuditMessage:
    """Write one event to the outbox in the current transaction of ``using``; it is relayed
    to DynamoDB after commit. ``changes`` must already be JSON-safe and masked (the tracking
    receivers and ``audit_record`` make it so). Actor, request id and IP come from the
    request or task context (``core.context``) unless ``actor`` is given."""
    event = _event(
        entity=entity,
        action=action,
        changes=changes,
        entity_repr=entity_repr,
        remarks=remarks,
        actor=actor,
    )
    message = outbox_add(AUDIT_TOPIC, event.event_id, event.payload, ref=event.entity, using=using)
    return _as_event(message)  # a new ULID: never there already, so always written


def audit_creates_add(instances: Iterable[models.Model], *, actor: Any = None) -> int:
    """The create events of rows written in bulk (``COPY``, ``bulk_create``: no signals),
    as the change tracking would have written them one by one: every tracked field, masked.
    Each instance must carry its primary key and its related objects (its ``str()`` runs).
    Call it inside the transaction of the write; returns how many events were added."""
    messages = []
    for instance in instances:
        spec = tracking.spec_for(type(instance))
        if spec is None:
            raise ValueError(f"{type(instance).__name__} is not tracked")
        event = _event(
            entity=tracking.entity_for(instance),
            action="create",
            changes=tracking.creation_changes(spec, instance),
            entity_repr=spec.scrub(str(instance), instance),
            remarks="",
            actor=actor,
        )
        messages.append((event.key, event.payload, event.ref))
    return outbox_add_many(AUDIT_TOPIC, messages)


def audit_updates_add(
    updates: Iterable[tuple[models.Model, Mapping[str, Any], Iterable[str]]],
    *,
    actor: Any = None,
) -> int:
    """The update events of rows written without signals (``QuerySet.update()``,
    ``bulk_update``), as the change tracking would have written them: for each (instance
    as written, its values before by attname, the fields written), the tracked fields that
    changed, masked; no event for a row that did not change. One ``COPY`` for them all.
    Call it inside the transaction of the write; returns how many events were added."""
    messages = []
    for instance, before, fields in updates:
        spec = tracking.spec_for(type(instance))
        if spec is None:
            raise ValueError(f"{type(instance).__name__} is not tracked")
        changes = tracking.update_changes(spec, instance, before, fields)
        if not changes:
            continue
        event = _event(
            entity=tracking.entity_for(instance),
            action="update",
            changes=changes,
            entity_repr=spec.scrub(str(instance), instance),
            remarks="",
            actor=actor,
        )
        messages.append((event.key, event.payload, event.ref))
    return outbox_add_many(AUDIT_TOPIC, messages) if messages else 0


@transaction.atomic
def audit_transition(sender, *, instance, from_status, to_status, actor, remarks, **kwargs):
    """The audit event of a workflow move (``core.workflow.transitioned``)."""
    audit_record(
        instance_or_entity=instance,
        action="transition",
        changes={"status": [from_status, to_status]},
        remarks=remarks,
        actor=actor,
    )


def audit_record(
    *,
    instance_or_entity: models.Model | str,
    action: str,
    changes: dict[str, Any] | None = None,
    remarks: str = "",
    actor: Any = None,
) -> AuditMessage:
    """Record an event that signals do not see: a workflow transition (``action="transition"``,
    ``changes={"status": ["SUBMITTED", "APPROVED"]}``, remarks), a ``QuerySet.update()``, a
    bulk write. ``instance_or_entity`` is a model instance or ``"app_label.model_name#pk"``.
    Values are made JSON-safe and, for a tracked model, masked as its ``track()`` says.
    Call it inside the transaction of the change it describes."""
    if isinstance(instance_or_entity, models.Model):
        instance = instance_or_entity
        entity = tracking.entity_for(instance)
        spec = tracking.spec_for(type(instance))
        entity_repr = spec.scrub(str(instance), instance) if spec else str(instance)
    else:
        label, pk = tracking.parse_entity(instance_or_entity.strip())
        entity, entity_repr = f"{label}#{pk}", ""
    safe_changes = _safe_changes(changes, entity)
    return audit_outbox_add(
        entity=entity,
        action=action,
        changes=safe_changes,
        entity_repr=entity_repr,
        remarks=remarks,
        actor=actor,
    )


def audit_event_item(
    *,
    entity: str,
    action: str,
    changes: dict[str, Any] | None = None,
    entity_repr: str = "",
    remarks: str = "",
    actor: Any = None,
    event_id: str | None = None,
    occurred_at: datetime.datetime | None = None,
) -> AuditEventItem:
    """The audit event of a DynamoDB write, to save in the same ``TransactWrite``::

        with TransactWrite(connection=pynamodb_connection()) as tx:
            tx.save(transaction_item, condition=TransactionItem.txn_id.does_not_exist())
            tx.save(audit_event_item(entity=f"payments.transaction#{txn_id}", action="create",
                                     changes={...}, event_id=txn_id, occurred_at=created),
                    condition=AuditEventItem.entity.does_not_exist())

    ``event_id`` (a ULID, e.g. the new item's own) and ``occurred_at`` make the event
    deterministic: a retried write has the same key and cannot store it twice.
    ``changes`` must hold no PII in the clear: mask with ``audit.masking.mask_value``."""
    event = _event(
        entity=entity,
        action=action,
        changes=_safe_changes(changes, entity),
        entity_repr=entity_repr,
        remarks=remarks,
        actor=actor,
    )
    if event_id is not None:
        event.key = event_id
    if occurred_at is not None:
        event.created_at = occurred_at
    return event_item(event)


def audit_events_deliver(messages: list[OutboxMessage]) -> dict[int, Exception | str]:
    """The outbox handler of the ``audit`` topic: copy the events to DynamoDB, oldest first;
    returns the errors of those not copied.

    Each put is conditional on the key being absent: an event already in DynamoDB (a relay
    that died before marking its messages) counts as delivered, so an event is never stored
    twice. When DynamoDB is unavailable the events not yet written stay pending (the outbox
    retries them after its backoff)."""
    failed: dict[int, Exception | str] = {}
    for index, message in enumerate(messages):
        event = _as_event(message)
        try:
            _put_once(event_item(event))
        except PutError as exc:
            if exc.cause_response_code in _ITEM_REFUSED:
                logger.error("audit event %s refused by DynamoDB: %s", event.event_id, exc)
                failed[message.pk] = f"refused by DynamoDB: {exc}"
                continue
            return failed | _unavailable(messages[index:], exc)
        except PynamoDBException as exc:
            return failed | _unavailable(messages[index:], exc)
    return failed


def _unavailable(messages: list[OutboxMessage], exc: Exception) -> dict[int, Exception]:
    error = AuditStoreUnavailable(f"DynamoDB unavailable: {exc}")
    logger.warning("%s; %s audit event(s) stay pending", error, len(messages))
    return dict.fromkeys((message.pk for message in messages), error)


def event_item(row: AuditMessage) -> AuditEventItem:
    """The DynamoDB item of an event (the same event id, so a re-relay is a no-op)."""
    ts = iso(row.occurred_at)
    return AuditEventItem(
        row.entity,
        f"{ts}#{row.event_id}",
        event_id=row.event_id,
        ts=ts,
        day=day_key(calendar_day(row.occurred_at), day_shard(row.event_id)),
        action=row.action,
        entity_repr=row.entity_repr,
        actor_id=str(row.actor_id) if row.actor_id is not None else None,
        actor_repr=row.actor_repr,
        request_id=row.request_id,
        ip=row.ip or None,
        changes=json.dumps(row.changes, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        remarks=row.remarks,
        expires_at=row.occurred_at + datetime.timedelta(days=retention_days()),
    )


def retention_days() -> int:
    return settings.AUDIT_RETENTION_DAYS


# --- Internals -------------------------------------------------------------------------


def _event(
    *, entity: str, action: str, changes, entity_repr: str, remarks: str, actor
) -> AuditMessage:
    """A new event (not saved), with the actor, request id and IP of the context."""
    if action not in AuditMessage.Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    ctx = context.current()
    if actor is None:
        actor = ctx.actor
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditMessage(
        topic=AUDIT_TOPIC,
        key=new_event_id(),
        ref=entity[:200],
        created_at=timezone.now(),
        payload={
            "action": action,
            "entity_repr": (entity_repr or "")[:200],
            "actor_id": actor.pk if actor is not None else None,
            # a system principal (NACH results) has no name: the event's changes say the source
            "actor_repr": _actor_name(actor)[:150],
            "request_id": (ctx.request_id or "")[:64],
            "ip": _valid_ip(ctx.ip),
            "changes": changes or {},
            "remarks": remarks or "",
        },
    )


def _as_event(message: OutboxMessage) -> AuditMessage:
    """An outbox message of the audit topic seen as the event it carries."""
    if isinstance(message, AuditMessage):
        return message
    event = AuditMessage(**{f.attname: getattr(message, f.attname) for f in message._meta.fields})
    event._state = message._state
    return event


def _actor_name(actor) -> str:
    get_username = getattr(actor, "get_username", None)
    return get_username() if get_username is not None else ""


def _safe_changes(changes: dict[str, Any] | None, entity: str) -> dict[str, list]:
    """JSON-safe ``[before, after]`` pairs, masked as the entity's ``track()`` says."""
    spec = tracking.spec_for_label(tracking.parse_entity(entity)[0])
    safe = {}
    for name, pair in (changes or {}).items():
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"changes[{name!r}] must be [before, after], got {pair!r}")
        before, after = tracking.json_safe(pair[0]), tracking.json_safe(pair[1])
        safe[str(name)] = spec.present(str(name), before, after) if spec else [before, after]
    return safe


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def _put_once(item: AuditEventItem) -> None:
    try:
        item.save(condition=AuditEventItem.entity.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        # already relayed: the key holds the event id, so this is the same event
