from __future__ import annotations

import datetime
from typing import Any

from django.db import models
from ulid import ULID

from core.models import OutboxMessage

# The outbox topic of audit events (core.outbox): key = event id, ref = entity.
AUDIT_TOPIC = "audit"


def new_event_id() -> str:
    """A ULID: unique without coordination, and sorts by time."""
    return str(ULID())


def _payload_field(name: str, default: Any = None) -> property:
    return property(lambda message: message.payload.get(name, default), doc=f"payload[{name!r}]")


class AuditMessageManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(topic=AUDIT_TOPIC)


class AuditMessage(OutboxMessage):
    """An audit event written in the same Postgres transaction as the change it describes:
    a message of the outbox's ``audit`` topic (``core.outbox``).

    A Postgres change cannot commit atomically with a DynamoDB write, so the event waits
    there until the relay copies it to DynamoDB (at least once, idempotent by the event id,
    its ``key``) and marks it done. Its ``ref`` is the entity (``app_label.model_name#pk``,
    indexed while pending: the history pages show an entity's pending events), its
    ``created_at`` the moment it happened; the payload holds the rest, values in
    ``changes`` already masked."""

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"
        TRANSITION = "transition", "Transition"

    objects = AuditMessageManager()

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = "audit outbox message"

    def __str__(self) -> str:
        return f"{self.action} {self.entity} ({self.event_id})"

    @property
    def event_id(self) -> str:
        return self.key

    @property
    def entity(self) -> str:
        return self.ref

    @property
    def occurred_at(self) -> datetime.datetime:
        return self.created_at

    action = _payload_field("action", "")
    entity_repr = _payload_field("entity_repr", "")
    actor_id = _payload_field("actor_id")  # not a foreign key: the trail outlives users
    actor_repr = _payload_field("actor_repr", "")
    request_id = _payload_field("request_id", "")
    ip = _payload_field("ip")
    changes = _payload_field("changes", {})  # {field: [before, after]}, masked
    remarks = _payload_field("remarks", "")

    @property
    def is_pending(self) -> bool:
        return self.done_at is None


class Events(AuditMessage):
    """The admin's audit browser (at /admin/audit/events/, hence the name). It reads
    DynamoDB, not the outbox; access needs ``audit.view_events``."""

    class Meta:
        proxy = True
        verbose_name = "audit event"
        verbose_name_plural = "audit events"
        default_permissions = ("view",)
