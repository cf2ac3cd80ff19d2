"""Writes of the audit trail: outbox rows (with the change, in its transaction), explicit
events for workflow transitions, and the relay of outbox rows to DynamoDB."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from pynamodb.exceptions import PutError, PynamoDBException

from core import context
from core.clock import iso

from . import tracking
from .ddb_models import AuditEventItem, calendar_day, day_key, day_shard
from .exceptions import AuditStoreUnavailable
from .models import AuditOutbox, new_event_id

logger = logging.getLogger(__name__)

# DynamoDB refuses this one item for good (too large, malformed): keep it pending, log it,
# and relay the others. Any other error means the store is unavailable: stop the batch.
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
) -> AuditOutbox:
    """Write one outbox row in the current transaction of ``using`` and have it relayed
    after commit. ``changes`` must already be JSON-safe and masked (the tracking receivers
    and ``audit_record`` make it so). Actor, request id and IP come from the request or
    task context (``core.context``) unless ``actor`` is given."""
    row = _outbox_row(
        entity=entity,
        action=action,
        changes=changes,
        entity_repr=entity_repr,
        remarks=remarks,
        actor=actor,
    )
    row.save(using=using, force_insert=True)
    _relay_after_commit(using)
    return row


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
) -> AuditOutbox:
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
    row = _outbox_row(
        entity=entity,
        action=action,
        changes=_safe_changes(changes, entity),
        entity_repr=entity_repr,
        remarks=remarks,
        actor=actor,
    )
    if event_id is not None:
        row.event_id = event_id
    if occurred_at is not None:
        row.occurred_at = occurred_at
    return event_item(row)


def audit_relay_pending(*, limit: int = 500) -> int:
    """Copy up to ``limit`` pending outbox rows to DynamoDB, oldest first; returns how many
    were marked relayed.

    Rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent relays share
    the work instead of waiting. Each put is conditional on the key being absent: an event
    already in DynamoDB (a relay that died before marking its rows) counts as relayed, so
    an event is never stored twice. When DynamoDB is unavailable the rows not yet written
    stay pending and ``AuditStoreUnavailable`` is raised (after marking those written).
    """
    relayed: list[int] = []
    failure: PynamoDBException | None = None
    with transaction.atomic():
        rows = list(
            AuditOutbox.objects.filter(relayed_at__isnull=True)
            .order_by("id")
            .select_for_update(skip_locked=True)[:limit]
        )
        for row in rows:
            try:
                _put_once(event_item(row))
            except PutError as exc:
                if exc.cause_response_code in _ITEM_REFUSED:
                    logger.error("audit event %s refused by DynamoDB: %s", row.event_id, exc)
                    continue
                failure = exc
                break
            except PynamoDBException as exc:
                failure = exc
                break
            relayed.append(row.pk)
        if relayed:
            AuditOutbox.objects.filter(pk__in=relayed).update(relayed_at=timezone.now())
    if failure is not None:
        raise AuditStoreUnavailable(
            f"DynamoDB unavailable, {len(rows) - len(relayed)} audit event(s) stay pending: "
            f"{failure}"
        ) from failure
    return len(relayed)


def audit_outbox_purge(*, older_than_days: int | None = None) -> int:
    """Delete outbox rows relayed more than ``older_than_days`` ago (default
    ``settings.AUDIT_OUTBOX_RETENTION_DAYS``; DynamoDB keeps the events); pending rows are
    never deleted, however old. Returns how many were deleted."""
    if older_than_days is None:
        older_than_days = settings.AUDIT_OUTBOX_RETENTION_DAYS
    cutoff = timezone.now() - datetime.timedelta(days=older_than_days)
    deleted, _ = AuditOutbox.objects.filter(relayed_at__lt=cutoff).delete()
    return deleted


def event_item(row: AuditOutbox) -> AuditEventItem:
    """The DynamoDB item of an outbox row (the same event id, so a re-relay is a no-op)."""
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


def _outbox_row(
    *, entity: str, action: str, changes, entity_repr: str, remarks: str, actor
) -> AuditOutbox:
    if action not in AuditOutbox.Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    ctx = context.current()
    if actor is None:
        actor = ctx.actor
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditOutbox(
        event_id=new_event_id(),
        entity=entity[:200],
        entity_repr=(entity_repr or "")[:200],
        action=action,
        actor_id=actor.pk if actor is not None else None,
        # a system principal (NACH results) has no name: the event's changes say the source
        actor_repr=_actor_name(actor)[:150],
        request_id=(ctx.request_id or "")[:64],
        ip=_valid_ip(ctx.ip),
        occurred_at=timezone.now(),
        changes=changes or {},
        remarks=remarks or "",
    )


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


def _relay_after_commit(using: str | None) -> None:
    """Enqueue one relay task when the transaction commits (once per transaction, however
    many events it wrote). Beat runs the relay every few seconds anyway."""
    if not settings.AUDIT_RELAY_ON_COMMIT:
        return
    connection = transaction.get_connection(using)
    if connection.in_atomic_block and any(
        callback is _enqueue_relay for _sids, callback, _robust in connection.run_on_commit
    ):
        return
    transaction.on_commit(_enqueue_relay, using=using, robust=True)


def _enqueue_relay() -> None:
    from .tasks import audit_relay_task

    try:
        # No broker retries: the change is committed, the request must not wait on Redis.
        audit_relay_task.apply_async(retry=False)
    except Exception:
        logger.warning("audit relay not enqueued; beat will relay", exc_info=True)
