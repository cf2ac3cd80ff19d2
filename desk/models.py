"""The branch desk's records in Postgres: the receipt series of a branch and financial year,
and the desk receipt (what DynamoDB's payment transaction does not hold: the mode's
details, remarks, who collected, the form's idempotency key, the duplicate confirmation,
the reprints). The payment itself lives in DynamoDB (``payments``); its status is read from
there when a receipt is shown."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Branch
from loans.models import LoanAccount, money_field


class ReceiptSeries(models.Model):
    """The next receipt number of one branch and financial year (April-March). Taken under
    a row lock in the transaction that records the receipt, so a refusal rolls it back."""

    SCOPE_BRANCH_PATH = "branch"

    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    financial_year = models.CharField(max_length=7, help_text="e.g. 2026-27")
    next_number = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name_plural = "receipt series"
        constraints = [
            models.UniqueConstraint(
                fields=["branch", "financial_year"], name="receipt_series_per_branch_year"
            ),
            models.CheckConstraint(condition=Q(next_number__gte=1), name="receipt_series_next"),
        ]

    def __str__(self) -> str:
        return f"{self.branch_id} {self.financial_year}: next {self.next_number}"


class DeskReceipt(models.Model):
    """A payment collected at a branch's desk, and the receipt handed over for it."""

    SCOPE_BRANCH_PATH = "branch"

    class Mode(models.TextChoices):
        CASH = "CASH", "Cash"
        CHEQUE = "CHEQUE", "Cheque"
        UPI = "UPI", "UPI"
        NEFT = "NEFT", "NEFT"

    receipt_number = models.CharField(max_length=40)
    txn_id = models.CharField("transaction", max_length=26, unique=True)
    loan = models.ForeignKey(LoanAccount, on_delete=models.PROTECT, related_name="+")
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    business_date = models.DateField()
    amount = money_field()
    mode = models.CharField(max_length=10, choices=Mode)
    cheque_number = models.CharField(max_length=6, blank=True)
    cheque_bank = models.CharField(max_length=100, blank=True)
    cheque_date = models.DateField(null=True, blank=True)
    upi_reference = models.CharField("UPI reference", max_length=35, blank=True)
    neft_utr = models.CharField("NEFT UTR", max_length=22, blank=True)
    remarks = models.CharField(max_length=200, blank=True)
    collector = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=64, unique=True, editable=False)
    duplicate_warned = models.BooleanField(
        default=False, help_text="A payment of the same amount on the loan came in shortly before."
    )
    duplicate_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    allocation = models.JSONField(
        default=dict,
        help_text="What the payment was to pay when confirmed (the preview): shown as "
        "provisional until the posting's own split is there.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    first_shown_at = models.DateTimeField(null=True, blank=True, editable=False)
    reprint_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("collect_payment", "Can collect a payment at the desk")]
        constraints = [
            models.UniqueConstraint(
                fields=["branch", "receipt_number"], name="desk_receipt_number_per_branch"
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=Decimal("0")), name="desk_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(duplicate_confirmed_by__isnull=True) | Q(duplicate_warned=True),
                name="desk_duplicate_confirmed_when_warned",
            ),
        ]
        indexes = [
            models.Index(fields=["branch", "-created_at"], name="desk_receipt_branch_recent"),
            models.Index(fields=["loan", "-created_at"], name="desk_receipt_loan_recent"),
            models.Index(fields=["receipt_number"], name="desk_receipt_number"),
        ]

    def __str__(self) -> str:
        return self.receipt_number

    @property
    def mode_details(self) -> str:
        if self.mode == self.Mode.CHEQUE:
            when = self.cheque_date.strftime("%d %b %Y") if self.cheque_date else ""
            return f"Cheque {self.cheque_number}, {self.cheque_bank}, dated {when}"
        if self.mode == self.Mode.UPI:
            return f"UPI, reference {self.upi_reference}"
        if self.mode == self.Mode.NEFT:
            return f"NEFT, UTR {self.neft_utr}"
        return "Cash"
