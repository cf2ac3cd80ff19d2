"""The kernel's one table: the status history of every workflow object."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
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
