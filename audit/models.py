from django.db import models
from django.db.models import Q
from django.utils import timezone
from ulid import ULID


def new_event_id() -> str:
    """A ULID: unique without coordination, and sorts by time."""
    return str(ULID())


class AuditOutbox(models.Model):
    """An audit event written in the same Postgres transaction as the change it describes.

    A Postgres change cannot commit atomically with a DynamoDB write, so the event waits
    here until ``audit_relay_pending`` copies it to DynamoDB (at least once, idempotent by
    ``event_id``) and sets ``relayed_at``. Values in ``changes`` are already masked.
    """

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete"
        TRANSITION = "transition", "Transition"

    event_id = models.CharField(max_length=26, unique=True, default=new_event_id, editable=False)
    entity = models.CharField(max_length=200, help_text="app_label.model_name#pk")
    entity_repr = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=12, choices=Action.choices)
    # Not a foreign key: the trail outlives users, and a user's own deletion is audited too.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_repr = models.CharField(max_length=150, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]}")
    remarks = models.TextField(blank=True)
    relayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "audit outbox row"
        indexes = [
            # The relay's "oldest pending first" and the history view's pending rows stay
            # index lookups however large the relayed history grows.
            models.Index(
                fields=["id"], condition=Q(relayed_at__isnull=True), name="audit_outbox_pending"
            ),
            models.Index(
                fields=["entity"],
                condition=Q(relayed_at__isnull=True),
                name="audit_outbox_pending_entity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity} ({self.event_id})"

    @property
    def is_pending(self) -> bool:
        return self.relayed_at is None


class Events(AuditOutbox):
    """The admin's audit browser (at /admin/audit/events/, hence the name). It reads
    DynamoDB, not this table; access needs ``audit.view_auditoutbox``."""

    class Meta:
        proxy = True
        verbose_name = "audit event"
        verbose_name_plural = "audit events"
        default_permissions = ()
