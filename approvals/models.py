"""Maker-checker requests for actions that have no workflow of their own.

A payment reversal or a charge waiver is asked for by a maker and carried out only when
a checker (never the maker: checked in the service and by a database constraint)
approves it. Workflows with a status of their own (mandates, DCR, DBS) use the same
``ensure_checker`` rule and appear in the same approvals inbox.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Branch


class ApprovalRequest(models.Model):
    SCOPE_BRANCH_PATH = "branch"

    class Kind(models.TextChoices):
        PAYMENT_REVERSAL = "PAYMENT_REVERSAL", "Payment reversal"
        CHARGE_WAIVER = "CHARGE_WAIVER", "Charge waiver"
        MANDATE_SUSPENSION = "MANDATE_SUSPENSION", "Mandate suspension"
        MANDATE_CANCELLATION = "MANDATE_CANCELLATION", "Mandate cancellation"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Returned"

    kind = models.CharField(max_length=20, choices=Kind)
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    entity = models.CharField(max_length=200, help_text="app_label.model#pk of the subject")
    entity_repr = models.CharField(max_length=200)
    payload = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    made_at = models.DateTimeField(auto_now_add=True)
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    remarks = models.TextField(blank=True)

    class Meta:
        ordering = ["-made_at"]
        indexes = [models.Index(fields=["status", "kind", "branch"], name="approval_inbox")]
        constraints = [
            models.CheckConstraint(
                condition=Q(checker__isnull=True) | ~Q(checker=F("maker")),
                name="approval_checker_is_not_maker",
            ),
            models.UniqueConstraint(
                fields=["kind", "entity"],
                condition=Q(status="PENDING"),
                name="approval_one_pending_per_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.entity_repr}"
