"""The kernel's tables: the status history of every workflow object, the runs of the
run-once jobs, and the outbox."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class StatusChange(models.Model):
    """One move of a workflow object (a mandate, a DCR, a DBS): from, to, who, when, why.

    Written only by ``core.workflow.transition``; an owning model reads its history through
    a ``GenericRelation`` (``mandate.transitions``, ``dcr.history``)."""

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    subject = GenericForeignKey("content_type", "object_id")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A default, not auto_now_add: the copy of older history keeps its times.
    at = models.DateTimeField(default=timezone.now, editable=False)
    remarks = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = "status change"
        indexes = [
            models.Index(
                fields=["content_type", "object_id", "at", "id"], name="status_change_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.from_status} > {self.to_status}"


class JobRun(models.Model):
    """One run of a run-once job (a daily job's business date): the guard of ``core.jobs``.

    RUNNING with a live lease: a worker is at it, others skip. DONE: nothing to do (unless
    forced). FAILED, or RUNNING past its lease (its worker died): the next claim takes it
    over and resumes from ``progress``, the checkpoint the job wrote as it went."""

    class State(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    name = models.CharField(max_length=60, help_text="The job, e.g. dcr_daily@1800.")
    key = models.CharField(max_length=40, help_text="The run of the job, e.g. its business date.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.RUNNING)
    owner = models.CharField(max_length=120, blank=True, help_text="The worker holding the run.")
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.JSONField(
        default=dict, blank=True, help_text="The checkpoint a taken-over run resumes from."
    )
    counts = models.JSONField(default=dict, blank=True, help_text="The run's figures.")
    error = models.TextField(blank=True, help_text="The last failure.")

    class Meta:
        ordering = ["-key", "name"]
        verbose_name = "daily job run"
        constraints = [models.UniqueConstraint(fields=["name", "key"], name="job_run_once")]

    def __str__(self) -> str:
        return f"{self.name} {self.key} ({self.get_state_display()})"


class OutboxMessage(models.Model):
    """A side effect on another store (DynamoDB), written in the Postgres transaction of the
    change that causes it and delivered after the commit by the handler its topic registered
    (``core.outbox``): at least once, so every handler is idempotent by ``key``.

    ``key`` is unique per topic (an event id, a notification id, an execution id, a
    transaction id): adding the same one again is a no-op. ``ref`` is what the owning app
    finds its pending messages by (audit: the entity). A message is pending until
    ``done_at``; a failed delivery counts ``attempts``, keeps ``last_error`` and is retried
    from ``available_at``. Done messages are purged after ``OUTBOX_RETENTION_DAYS``."""

    topic = models.CharField(max_length=50)
    key = models.CharField(max_length=200)
    ref = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now, help_text="Not delivered before.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "outbox message"
        constraints = [
            models.UniqueConstraint(fields=["topic", "key"], name="outbox_topic_key_unique")
        ]
        indexes = [
            # The relay's "due, oldest first" and the backlog figures read only pending rows,
            # however many delivered ones the retention keeps.
            models.Index(
                fields=["available_at", "id"],
                condition=Q(done_at__isnull=True),
                name="outbox_pending",
            ),
            models.Index(
                fields=["topic", "ref"],
                condition=Q(done_at__isnull=True),
                name="outbox_pending_ref",
            ),
            models.Index(
                fields=["done_at"], condition=Q(done_at__isnull=False), name="outbox_done"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.key}"

    @property
    def is_done(self) -> bool:
        return self.done_at is not None
