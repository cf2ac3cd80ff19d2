"""The loan ledger's side of payments: one posting per DynamoDB transaction."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Branch
from core.money import inr
from loans.models import LoanAccount, money_field

ZERO = Decimal("0.00")
# The outbox topic that marks DynamoDB's transaction REVERSED after a reversal commits
# (core.outbox): key = the transaction id.
REVERSAL_TOPIC = "payments.reversal"


class Posting(models.Model):
    """A payment applied to a loan. ``txn_id`` is unique: posting twice changes nothing."""

    SCOPE_BRANCH_PATH = "branch"

    txn_id = models.CharField(max_length=26, unique=True)
    loan = models.ForeignKey(LoanAccount, on_delete=models.PROTECT, related_name="postings")
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    business_date = models.DateField()
    mode = models.CharField(max_length=10)
    amount = money_field()
    charges = money_field(default=ZERO)
    interest = money_field(default=ZERO)
    principal = money_field(default=ZERO)
    excess = money_field(default=ZERO, help_text="Paid beyond everything owed: an advance.")
    allocations = models.JSONField(
        default=list, help_text="[{instalment, number, charges, interest, principal}] as strings"
    )
    posted_at = models.DateTimeField(auto_now_add=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-posted_at"]
        permissions = [
            ("request_reversal", "Can ask for a payment reversal"),
            ("approve_reversal", "Can approve a payment reversal"),
        ]
        indexes = [
            models.Index(fields=["business_date", "loan"], name="posting_day_loan"),
            models.Index(fields=["loan", "-posted_at"], name="posting_loan_recent"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="posting_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.txn_id} {inr(self.amount)} on {self.loan_id}"


class LedgerSwitch(models.Model):
    """The ledger's maintenance switch (one row). While on, postings wait and back off."""

    maintenance = models.BooleanField(
        default=False, help_text="While on, payments are accepted but not posted to the ledger."
    )
    reason = models.CharField(max_length=200, blank=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "ledger maintenance switch"
        verbose_name_plural = "ledger maintenance switches"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="ledger_switch_single_row")]

    def __str__(self) -> str:
        return "Ledger in maintenance" if self.maintenance else "Ledger open"


class BulkUpload(models.Model):
    """A file of repayments (a collection agency's, a field app's): previewed, then imported
    row by row through the one ingestion (``payments.services.bulk``).

    The branch is the uploader's (a branch user), or else the one branch of the file's
    loans; a file of several branches has none and is seen by its uploader and by those who
    see every branch. The counts are kept by the import as it goes (the progress bar)."""

    SCOPE_BRANCH_PATH = "branch"
    MAX_ROWS = 10_000

    class Status(models.TextChoices):
        PREVIEWED = "PREVIEWED", "Previewed"
        IMPORTING = "IMPORTING", "Importing"
        DONE = "DONE", "Imported"

    class Format(models.TextChoices):
        CSV = "CSV", "CSV"
        XLSX = "XLSX", "Excel"

    file_name = models.CharField(max_length=200)
    file_format = models.CharField(max_length=4, choices=Format.choices)
    sha256 = models.CharField(max_length=64, help_text="Of the file: with the row, the key.")
    branch = models.ForeignKey(
        Branch, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PREVIEWED)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    import_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    receipts_checked = models.BooleanField(
        default=True, help_text="Whether the preview could check receipts already recorded."
    )
    total_rows = models.PositiveIntegerField(default=0)
    to_import = models.PositiveIntegerField(default=0, help_text="Rows the import sends.")
    processed = models.PositiveIntegerField(default=0)
    recorded = models.PositiveIntegerField(default=0)
    already_recorded = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0, help_text="Invalid in the file, or refused.")

    class Meta:
        ordering = ["-uploaded_at"]
        verbose_name = "bulk repayment upload"
        indexes = [models.Index(fields=["branch", "-uploaded_at"], name="bulk_upload_branch")]

    def __str__(self) -> str:
        return self.file_name

    @property
    def percent(self) -> int:
        return 100 if not self.to_import else min(100, self.processed * 100 // self.to_import)


class BulkUploadRow(models.Model):
    """One row of an upload: its cells as typed, what they mean, and what became of it."""

    class Status(models.TextChoices):
        VALID = "VALID", "Valid"
        INVALID = "INVALID", "Invalid"
        RECORDED = "RECORDED", "Recorded"
        ALREADY_RECORDED = "ALREADY", "Already recorded"
        REFUSED = "REFUSED", "Refused"

    # What the import sends to the ingestion (an "already recorded" row replays).
    SENT = (Status.VALID, Status.ALREADY_RECORDED)

    upload = models.ForeignKey(BulkUpload, on_delete=models.CASCADE, related_name="rows")
    number = models.PositiveIntegerField(help_text="The row in the file (the header is a row).")
    cells = models.JSONField(default=dict, help_text="The row as typed, by column.")
    loan = models.ForeignKey(
        LoanAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amount = money_field(null=True, blank=True)
    mode = models.CharField(max_length=10, blank=True)
    business_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices)
    field = models.CharField(max_length=40, blank=True, help_text="The column at fault.")
    reason = models.CharField(max_length=500, blank=True)
    txn_id = models.CharField(max_length=26, blank=True)
    imported = models.BooleanField(default=False)

    class Meta:
        ordering = ["upload", "number"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "number"], name="bulk_row_unique_number")
        ]
        indexes = [models.Index(fields=["upload", "status"], name="bulk_row_status")]

    def __str__(self) -> str:
        return f"row {self.number}"
