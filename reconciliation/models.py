"""Daily reconciliation of a branch's collections: the DCR, the DBS, deposits and bank
statements (the daily build's run-once guard is ``core.jobs``).

- ``Dcr`` (Daily Collection Report): per branch and business date, the figures of the
  day's transactions (DynamoDB's ``branch_day`` index) by mode and by collector, the ids
  of the transactions it covers, and the workflow DRAFT > SUBMITTED > APPROVED, or
  RETURNED with remarks (back to DRAFT). A SUBMITTED or APPROVED DCR is never rewritten:
  what arrives later is a ``LateArrival``.
- ``Dbs`` (Daily Bank Summary): opening cash in hand (the previous DBS's closing) + cash
  collected (the DCR's CASH) - deposits = closing cash in hand, with flags; same workflow.
- ``Deposit``: cash paid in at a banking partner's collection account, with its slip.
- ``StatementUpload`` / ``StatementLine``: a collection account's bank statement (CSV),
  matched to deposits by slip number and amount.

Money is ``core.money.MoneyField`` (14 digits, 2 places); DynamoDB holds integer paise.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from ulid import ULID

from accounts.models import Branch
from core.models import StatusChange
from core.money import MoneyField, inr
from core.templatetags.formats import day
from core.workflow import ACTOR, NOW, REMARKS
from loans.models import CollectionAccount

ZERO = Decimal("0.00")


def money(**kwargs) -> MoneyField:
    kwargs.setdefault("default", ZERO)
    return MoneyField(**kwargs)


class Status(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    SUBMITTED = "SUBMITTED", "Submitted"
    APPROVED = "APPROVED", "Approved"
    RETURNED = "RETURNED", "Returned"


# The allowed moves of a DCR and of a DBS (the same workflow).
TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.SUBMITTED},
    Status.SUBMITTED: {Status.APPROVED, Status.RETURNED},
    Status.RETURNED: {Status.DRAFT},
    Status.APPROVED: set(),
}
# What a move sets besides the status: the submitter (a new round: no decision yet), the
# checker's decision with its remarks.
_DECIDED = {"decided_by": ACTOR, "decided_at": NOW, "remarks": REMARKS}
TRANSITION_SETS = {
    Status.SUBMITTED: {
        "submitted_by": ACTOR,
        "submitted_at": NOW,
        "decided_by": None,
        "decided_at": None,
    },
    Status.APPROVED: _DECIDED,
    Status.RETURNED: _DECIDED,
}
# Figures of a DCR or DBS in these statuses are frozen.
FROZEN = {Status.SUBMITTED, Status.APPROVED}


class WorkflowFields(models.Model):
    """What a DCR and a DBS share: status, maker, checker, remarks."""

    SCOPE_BRANCH_PATH = "branch"
    Status = Status
    TRANSITIONS = TRANSITIONS
    TRANSITION_SETS = TRANSITION_SETS

    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    business_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    computed_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    remarks = models.TextField(blank=True, help_text="The checker's remarks of the last decision.")
    history = GenericRelation(StatusChange)

    class Meta:
        abstract = True

    @property
    def is_frozen(self) -> bool:
        return self.status in FROZEN


class Dcr(WorkflowFields):
    """Daily Collection Report of one branch and business date."""

    is_provisional = models.BooleanField(
        default=False, help_text="An intraday roll-up of a business date not yet closed."
    )
    collected_count = models.PositiveIntegerField(default=0)
    collected_amount = money(help_text="RECEIVED and POSTED transactions.")
    cash_amount = money(help_text="The CASH part of the collected amount (for the DBS).")
    excluded_count = models.PositiveIntegerField(default=0)
    excluded_amount = money(help_text="FAILED and REVERSED transactions (not collected).")
    txn_ids = ArrayField(
        models.CharField(max_length=40),
        default=list,
        blank=True,
        help_text="The collected transactions it covers (sorted).",
    )
    excluded_txn_ids = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    read_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the DynamoDB read of these figures began."
    )

    class Meta:
        verbose_name = "DCR"
        verbose_name_plural = "DCRs"
        ordering = ["-business_date", "branch"]
        permissions = [
            ("submit_dcr", "Can submit a DCR"),
            ("approve_dcr", "Can approve or return a DCR"),
            ("build_dcr", "Can build or refresh DCRs on demand"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["branch", "business_date"], name="dcr_one_per_day"),
            models.CheckConstraint(
                condition=Q(collected_amount__gte=0, cash_amount__gte=0, excluded_amount__gte=0),
                name="dcr_amounts_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "business_date"], name="dcr_status_day"),
            models.Index(fields=["business_date", "branch"], name="dcr_day_branch"),
        ]

    def __str__(self) -> str:
        return f"DCR {self.branch.code} {self.business_date:%Y-%m-%d}"


class DcrLine(models.Model):
    """One total of a DCR: by mode, by collector, or (not collected) by status."""

    SCOPE_BRANCH_PATH = "dcr__branch"

    class Dimension(models.TextChoices):
        MODE = "MODE", "Mode"
        COLLECTOR = "COLLECTOR", "Collector"
        EXCLUDED = "EXCLUDED", "Not collected (by status)"

    dcr = models.ForeignKey(Dcr, on_delete=models.CASCADE, related_name="lines")
    dimension = models.CharField(max_length=10, choices=Dimension.choices)
    key = models.CharField(max_length=200)
    count = models.PositiveIntegerField()
    amount = money()

    class Meta:
        ordering = ["dimension", "key"]
        constraints = [
            models.UniqueConstraint(fields=["dcr", "dimension", "key"], name="dcr_line_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dimension} {self.key}: {self.count} / {self.amount}"


class LateArrival(models.Model):
    """A transaction seen after its DCR was submitted: new, or no longer collected
    (failed or reversed since). It is shown to the approver; the figures stay as submitted."""

    SCOPE_BRANCH_PATH = "dcr__branch"

    class Kind(models.TextChoices):
        NEW = "NEW", "Arrived after submission"
        NOT_COLLECTED = "NOT_COLLECTED", "Failed or reversed after submission"

    dcr = models.ForeignKey(Dcr, on_delete=models.CASCADE, related_name="late_arrivals")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    txn_id = models.CharField(max_length=40)
    mode = models.CharField(max_length=10)
    status = models.CharField(max_length=10)
    collector = models.CharField(max_length=200, blank=True)
    amount = money()
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="When a rebuild of the returned DCR included it."
    )

    class Meta:
        ordering = ["detected_at", "txn_id"]
        constraints = [
            models.UniqueConstraint(fields=["dcr", "txn_id", "kind"], name="late_arrival_once"),
        ]

    def __str__(self) -> str:
        return f"{self.txn_id} ({self.get_kind_display()})"


class Dbs(WorkflowFields):
    """Daily Bank Summary of one branch and business date."""

    opening_cash = money(help_text="The previous DBS's closing cash in hand.")
    cash_collected = money(help_text="The DCR's CASH total.")
    deposits_total = money()
    deposit_count = models.PositiveIntegerField(default=0)
    closing_cash = money()
    cash_limit = money(help_text="The branch's cash-in-hand limit when computed.")
    dcr = models.ForeignKey(Dcr, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    flags = models.JSONField(default=list, blank=True, help_text='[{"code", "message"}]')

    class Meta:
        verbose_name = "DBS"
        verbose_name_plural = "DBSs"
        ordering = ["-business_date", "branch"]
        permissions = [
            ("submit_dbs", "Can submit a DBS"),
            ("approve_dbs", "Can approve or return a DBS"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["branch", "business_date"], name="dbs_one_per_day"),
        ]
        indexes = [
            models.Index(fields=["status", "business_date"], name="dbs_status_day"),
            models.Index(fields=["branch", "-business_date"], name="dbs_branch_recent"),
        ]

    def __str__(self) -> str:
        return f"DBS {self.branch.code} {self.business_date:%Y-%m-%d}"

    @property
    def flag_codes(self) -> list[str]:
        return [flag["code"] for flag in self.flags or []]


def slip_upload_to(instance: Deposit, filename: str) -> str:
    """A name of our own (the uploaded name may carry anything), under branch and month."""
    suffix = Path(filename).suffix.lower()[:5]
    return f"deposit_slips/{instance.branch_id}/{instance.deposit_date:%Y/%m}/{ULID()}{suffix}"


class Deposit(models.Model):
    """Collected cash paid in at a collection account. Recorded by branch staff through
    ``services.deposit_record``; the slip number is unique within the branch."""

    SCOPE_BRANCH_PATH = "branch"

    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    deposit_date = models.DateField()
    collection_account = models.ForeignKey(
        CollectionAccount, on_delete=models.PROTECT, related_name="+"
    )
    slip_number = models.CharField(max_length=40, blank=True)
    amount = MoneyField()
    slip_scan = models.FileField(
        upload_to=slip_upload_to, blank=True, help_text="PDF, JPEG or PNG, at most 5 MB."
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-deposit_date", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_amount_positive"),
            models.UniqueConstraint(
                fields=["branch", "slip_number"],
                condition=~Q(slip_number=""),
                name="deposit_slip_once_per_branch",
            ),
        ]
        indexes = [
            models.Index(fields=["branch", "deposit_date"], name="deposit_branch_day"),
            models.Index(fields=["collection_account", "slip_number"], name="deposit_account_slip"),
        ]

    def __str__(self) -> str:
        return f"{inr(self.amount)} slip {self.slip_number or '(none)'} on {day(self.deposit_date)}"


class StatementUpload(models.Model):
    """A collection account's bank statement, imported whole or not at all.

    A collection account serves many branches, so statements are head-office data:
    only users who see every branch see them (``selectors.statement_uploads_visible``)."""

    collection_account = models.ForeignKey(
        CollectionAccount, on_delete=models.PROTECT, related_name="+"
    )
    file_name = models.CharField(max_length=200)
    line_count = models.PositiveIntegerField(default=0)
    first_date = models.DateField(null=True, blank=True)
    last_date = models.DateField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    content_sha256 = models.CharField(
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text="The file's SHA-256: a file is imported once per account (empty before).",
    )

    class Meta:
        ordering = ["-uploaded_at"]
        verbose_name = "bank statement"
        constraints = [
            models.UniqueConstraint(
                fields=["collection_account", "content_sha256"],
                condition=~Q(content_sha256=""),
                name="statement_file_once_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.collection_account})"


class StatementLine(models.Model):
    upload = models.ForeignKey(StatementUpload, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField(help_text="The line of the CSV file (header: 1).")
    txn_date = models.DateField()
    narration = models.CharField(max_length=300, blank=True)
    reference = models.CharField(max_length=60, blank=True, help_text="The slip number.")
    credit = money()
    matched_deposit = models.OneToOneField(
        Deposit, null=True, blank=True, on_delete=models.SET_NULL, related_name="statement_line"
    )

    class Meta:
        ordering = ["upload", "line_number"]
        indexes = [models.Index(fields=["reference"], name="statement_line_reference")]

    def __str__(self) -> str:
        return f"line {self.line_number}: {self.reference} {inr(self.credit)}"
