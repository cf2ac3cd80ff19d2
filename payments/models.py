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
