from django.core.exceptions import ValidationError
from django.db import models

# The outbox topic of a release, PENDING > QUEUED after the caller's commit (core.outbox):
# key = the notification id. Inline: released by the committing process itself.
RELEASE_TOPIC = "notifications.release"


class Channel(models.TextChoices):
    EMAIL = "EMAIL", "Email"
    SMS = "SMS", "SMS"
    PUSH = "PUSH", "Push"


class NotificationStatus(models.TextChoices):
    """Status of a notification in DynamoDB (``NotificationItem.status``).

    PENDING: stored, waiting for the caller's Postgres transaction to commit (a rollback
    leaves it PENDING, never sent, until its TTL; a commit releases it through the outbox,
    see ``notifications.services``). QUEUED: due at ``scheduled_at``.
    SENDING: claimed by a worker under a lease. SENT and FAILED are final (FAILED can be
    re-queued by staff).
    """

    PENDING = "PENDING", "Pending commit"
    QUEUED = "QUEUED", "Queued"
    SENDING = "SENDING", "Sending"
    SENT = "SENT", "Sent"
    FAILED = "FAILED", "Failed"


class NotificationTemplate(models.Model):
    """The wording of one kind of notification on one channel, as Django template text.

    Rendering has autoescaping off (SMS and plain-text email), fails on a missing
    placeholder, and has two extra filters: ``inr`` (``{{ amount|inr }}`` gives
    ``₹1,23,456.78``) and ``day`` (``{{ due_date|day }}`` gives ``05 Jan 2026``).
    ``lender_name`` is always available.
    """

    code = models.SlugField(max_length=50, help_text="e.g. receipt, pre_debit_notice")
    channel = models.CharField(max_length=5, choices=Channel.choices)
    subject = models.CharField(
        max_length=200, blank=True, help_text="Email subject (template text); unused for SMS."
    )
    body = models.TextField(help_text="Django template text, e.g. {{ amount|inr }}.")
    is_active = models.BooleanField(
        default=True, help_text="Switched off, notifications of this kind are not sent."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["code", "channel"], name="notification_template_code_channel_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.get_channel_display()})"

    def clean(self) -> None:
        from .exceptions import TemplateRenderError
        from .rendering import template_check

        errors = {}
        for field in ("subject", "body"):
            try:
                template_check(getattr(self, field))
            except TemplateRenderError as exc:
                errors[field] = str(exc)
        if self.channel == Channel.EMAIL and not self.subject.strip():
            errors.setdefault("subject", "An email needs a subject.")
        if errors:
            raise ValidationError(errors)


class Outbox(NotificationTemplate):
    """Admin placeholder, no table of its own: notifications live in DynamoDB, and this proxy
    gives their read-only views a place in the admin (/admin/notifications/outbox/ and an
    entry on the index). Access borrows the template permissions (see ``OutboxAdmin``)."""

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = "outbox"
        verbose_name_plural = "outbox"
