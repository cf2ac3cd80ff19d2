"""Maker-checker requests for actions that have no workflow of their own.

A payment reversal or a charge waiver is asked for by a maker and carried out only when
a checker (never the maker: checked in the service and by a database constraint)
approves it. Workflows with a status of their own (mandates, DCR, DBS) use the same
rule (``approvals.services.subject_decide``) and appear in the same approvals inbox.

``SubjectContribution`` records who created, changed, submitted and decided every
maker-checker subject, round by round: the four-eyes rule reads it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse

from accounts.models import Branch


class ApprovalRequest(models.Model):
    SCOPE_BRANCH_PATH = "branch"

    class Kind(models.TextChoices):
        PAYMENT_REVERSAL = "PAYMENT_REVERSAL", "Payment reversal"
        CHARGE_WAIVER = "CHARGE_WAIVER", "Charge waiver"
        MANDATE_SUSPENSION = "MANDATE_SUSPENSION", "Mandate suspension"
        MANDATE_CANCELLATION = "MANDATE_CANCELLATION", "Mandate cancellation"
        CUSTOMER_CHANGE = "CUSTOMER_CHANGE", "Customer change"

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

    def get_absolute_url(self) -> str:
        """The request's workflow page (where a checker decides it)."""
        return reverse("approvals:detail", args=[self.pk])

    @property
    def subject_line(self) -> str:
        """What is asked, as a confirmation names it: "Charge waiver: Bounce charge ₹500.00
        on LN0000000042"."""
        return f"{self.get_kind_display()}: {self.entity_repr}"


class SubjectContributionQuerySet(models.QuerySet):
    def blocking(self, subject, user_id: int | None) -> "SubjectContributionQuerySet":
        """The rows that keep ``user_id`` from deciding ``subject`` (a string, or an
        ``OuterRef`` to one): a contribution of theirs in a round no decision has closed.
        The creator is carried into every new round, so this covers the creator too. The
        one definition of the rule: the decision check and the inbox both use it."""
        closed = SubjectContribution.objects.filter(
            subject=OuterRef("subject"),
            kind=SubjectContribution.Kind.DECIDED,
            round__gte=OuterRef("round"),
        )
        return (
            self.filter(subject=subject, user_id=user_id)
            .exclude(kind=SubjectContribution.Kind.DECIDED)
            .exclude(Exists(closed))
        )


class SubjectContribution(models.Model):
    """Who had a hand in a maker-checker subject (``app_label.model#pk``: a mandate, a DCR,
    a DBS, an approval request), by round. A round ends with a decision (approve or
    return); the next contribution opens the next one.

    Every write that changes a subject's content (create, edit, a DBS's deposits, submit)
    records its actor here, holding the subject's row lock; the decision, under the same
    lock, refuses anyone with a row in the open round and then records itself (``DECIDED``)
    in that round. One table for every workflow, rather than columns on each model: a
    subject's contributors are a set (the DBS's deposits have many recorders), and a
    workflow added later needs no migration of its own.

    The unique constraint is the database's half of the rule: one row per user and round,
    so a decision row cannot be written for a user who contributed to the round it closes
    (nor a contribution for the user who closed it). The creator's row is copied into
    each new round by the decision, so the creator stays refused in every round.
    """

    class Kind(models.TextChoices):
        CREATED = "CREATED", "Created"
        CHANGED = "CHANGED", "Changed"
        SUBMITTED = "SUBMITTED", "Submitted"
        DECIDED = "DECIDED", "Decided"

    subject = models.CharField(max_length=200, help_text="app_label.model#pk of the subject")
    round = models.PositiveIntegerField(help_text="Decisions on the subject before this row.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind, help_text="The user's first part.")
    at = models.DateTimeField(auto_now_add=True)

    objects = SubjectContributionQuerySet.as_manager()

    class Meta:
        ordering = ["subject", "round", "at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "round", "user"], name="contribution_one_per_user_and_round"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} round {self.round}: {self.kind} by {self.user_id}"
