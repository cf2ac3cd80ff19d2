"""NACH mandates, their lifecycle, the execution schedule and the return-code policy.

Each presentation to the bank and its result live in DynamoDB (``MandateExecutionItem``);
Postgres keeps what is approved, scheduled and reported on.
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.models import StatusChange
from core.money import inr
from core.templatetags.formats import day
from core.workflow import ACTOR, ANY, NOW
from loans.models import (
    ACCOUNT_NUMBER_VALIDATOR,
    IFSC_VALIDATOR,
    BankingPartner,
    Customer,
    Instalment,
    LoanAccount,
    money_field,
)


class Mandate(models.Model):
    SCOPE_BRANCH_PATH = "loan__branch"

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        PENDING_APPROVAL = "PENDING_APPROVAL", "Pending approval"
        APPROVED = "APPROVED", "Approved"
        SUBMITTED_TO_BANK = "SUBMITTED_TO_BANK", "Submitted to bank"
        ACTIVE = "ACTIVE", "Active"
        REJECTED = "REJECTED", "Rejected by bank"
        SUSPENDED = "SUSPENDED", "Suspended"
        CANCELLED = "CANCELLED", "Cancelled"
        EXPIRED = "EXPIRED", "Expired"

    # The lifecycle, as data: the only moves core.workflow.transition allows.
    TRANSITIONS = {
        Status.DRAFT: {Status.PENDING_APPROVAL, Status.CANCELLED},
        Status.PENDING_APPROVAL: {Status.APPROVED, Status.DRAFT},
        Status.APPROVED: {Status.SUBMITTED_TO_BANK},
        Status.SUBMITTED_TO_BANK: {Status.ACTIVE, Status.REJECTED},
        Status.ACTIVE: {Status.SUSPENDED, Status.CANCELLED, Status.EXPIRED},
        Status.SUSPENDED: {Status.ACTIVE, Status.CANCELLED},
    }
    # What a move sets besides the status: the maker submits, the checker approves or
    # returns (to DRAFT); every move stamps the time.
    TRANSITION_SETS = {
        ANY: {"status_changed_at": NOW},
        Status.PENDING_APPROVAL: {"maker": ACTOR, "checker": None},
        Status.APPROVED: {"checker": ACTOR},
        Status.DRAFT: {"checker": ACTOR},
    }
    TRANSITION_REFUSED = "A {status} mandate cannot become {to}."

    # What the maker enters (and may change while it is a draft): the admin's form fields.
    DETAIL_FIELDS = (
        "loan",
        "payer",
        "bank_name",
        "account_number",
        "ifsc",
        "account_type",
        "max_amount",
        "frequency",
        "start_date",
        "end_date",
        "banking_partner",
        "mandate_type",
    )

    class MandateType(models.TextChoices):
        PHYSICAL_NACH = "PHYSICAL_NACH", "Physical NACH"
        E_NACH = "E_NACH", "e-NACH"
        UPI_AUTOPAY = "UPI_AUTOPAY", "UPI Autopay"

    class Frequency(models.TextChoices):
        MONTHLY = "MONTHLY", "Monthly"
        AS_PRESENTED = "AS_PRESENTED", "As and when presented"

    class AccountType(models.TextChoices):
        SAVINGS = "SAVINGS", "Savings"
        CURRENT = "CURRENT", "Current"

    loan = models.ForeignKey(LoanAccount, on_delete=models.PROTECT, related_name="mandates")
    payer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="mandates_paid",
        help_text="The borrower or a co-borrower of the loan.",
    )
    bank_name = models.CharField(max_length=100)
    account_number = models.CharField(max_length=18, validators=[ACCOUNT_NUMBER_VALIDATOR])
    ifsc = models.CharField("IFSC", max_length=11, validators=[IFSC_VALIDATOR])
    account_type = models.CharField(max_length=10, choices=AccountType, default=AccountType.SAVINGS)
    max_amount = money_field(validators=[MinValueValidator(Decimal("1.00"))])
    frequency = models.CharField(max_length=14, choices=Frequency, default=Frequency.MONTHLY)
    start_date = models.DateField()
    end_date = models.DateField()
    banking_partner = models.ForeignKey(
        BankingPartner, on_delete=models.PROTECT, related_name="mandates"
    )
    mandate_type = models.CharField(max_length=14, choices=MandateType, default=MandateType.E_NACH)
    umrn = models.CharField(
        "UMRN", max_length=20, unique=True, null=True, blank=True, editable=False
    )
    status = models.CharField(max_length=18, choices=Status, default=Status.DRAFT, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False
    )
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        help_text="Who submitted it for approval.",
    )
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        help_text="Who approved or returned it.",
    )
    status_changed_at = models.DateTimeField(auto_now_add=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Its history: every move, who made it, when, and why.
    transitions = GenericRelation(StatusChange, related_query_name="mandate")

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("submit_mandate", "Can submit a mandate for approval"),
            ("approve_mandate", "Can approve or return a mandate"),
            ("send_mandate_to_bank", "Can send approved mandates to the bank"),
            ("request_mandate_stop", "Can ask to suspend or cancel a mandate"),
            ("approve_mandate_stop", "Can approve suspending or cancelling a mandate"),
        ]
        indexes = [
            models.Index(fields=["status", "-id"], name="mandate_status_recent"),
            models.Index(fields=["loan", "status"], name="mandate_loan_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(checker__isnull=True) | Q(maker__isnull=True) | ~Q(checker=F("maker")),
                name="mandate_checker_is_not_maker",
            ),
            models.UniqueConstraint(
                fields=["loan"], condition=Q(status="ACTIVE"), name="one_active_mandate_per_loan"
            ),
            models.CheckConstraint(
                condition=Q(end_date__gt=F("start_date")), name="mandate_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"Mandate {self.pk} on {self.loan}"

    @property
    def account_number_masked(self) -> str:
        from audit.masking import mask_value

        return mask_value(self.account_number)

    def clean(self) -> None:
        errors = {}
        if self.loan_id and self.payer_id:
            payers = {self.loan.customer_id} | set(
                self.loan.co_borrowers.values_list("customer_id", flat=True)
            )
            if self.payer_id not in payers:
                errors["payer"] = "The payer must be the borrower or a co-borrower of the loan."
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            errors["end_date"] = "The mandate must end after it starts."
        if errors:
            raise ValidationError(errors)


class BankHoliday(models.Model):
    date = models.DateField(unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%d %b %Y} {self.name}"


class ReturnCodePolicy(models.Model):
    """What a NACH return code means for the next presentation and for the mandate."""

    class MandateAction(models.TextChoices):
        NONE = "NONE", "None"
        SUSPEND = "SUSPEND", "Suspend for review"
        CANCEL = "CANCEL", "Cancel"

    code = models.CharField(max_length=4, unique=True)
    description = models.CharField(max_length=120)
    retryable = models.BooleanField(
        help_text="Re-present within the limits below; otherwise stop presenting."
    )
    mandate_action = models.CharField(
        max_length=8, choices=MandateAction, default=MandateAction.NONE
    )
    max_presentations = models.PositiveSmallIntegerField(
        default=3, help_text="Presentations of one instalment in all, the first included."
    )
    retry_after_days = models.PositiveSmallIntegerField(default=5)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "return code policies"

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class ScheduledPresentation(models.Model):
    """One instalment to collect through an ACTIVE mandate: when, how much, how it went."""

    SCOPE_BRANCH_PATH = "mandate__loan__branch"

    class Status(models.TextChoices):
        SCHEDULED = "SCHEDULED", "Scheduled"
        PRESENTED = "PRESENTED", "Presented"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        RETRY_SCHEDULED = "RETRY_SCHEDULED", "Re-presentation scheduled"
        STOPPED = "STOPPED", "Stopped"

    mandate = models.ForeignKey(Mandate, on_delete=models.CASCADE, related_name="presentations")
    instalment = models.ForeignKey(Instalment, on_delete=models.CASCADE, related_name="+")
    due_date = models.DateField()
    presentation_date = models.DateField(help_text="The due date moved off bank holidays.")
    amount = money_field()
    attempts = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status, default=Status.SCHEDULED)
    pre_debit_notified_at = models.DateTimeField(null=True, blank=True)
    last_return_code = models.CharField(max_length=4, blank=True)

    class Meta:
        ordering = ["presentation_date", "id"]
        indexes = [
            models.Index(fields=["status", "presentation_date"], name="presentation_due"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["mandate", "instalment"], name="presentation_once_per_instalment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.mandate} {day(self.due_date)} {inr(self.amount)}"


class PresentationBatch(models.Model):
    """The executions handed to one banking partner on one date."""

    partner = models.ForeignKey(BankingPartner, on_delete=models.PROTECT, related_name="+")
    run_date = models.DateField()
    reference = models.CharField(max_length=40, unique=True)
    count = models.PositiveIntegerField(default=0)
    total = money_field(default=Decimal("0.00"))
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "presentation batches"
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "run_date"], name="one_batch_per_partner_day"
            )
        ]

    def __str__(self) -> str:
        return self.reference


# The outbox topic of a result's DynamoDB side (core.outbox): key = the execution id.
RESULT_TOPIC = "mandates.result"


class ExecutionResult(models.Model):
    """A partner's result for one execution, applied once (unique per execution). Its
    DynamoDB side (the execution's status, a success's NACH payment) follows through the
    outbox (topic ``mandates.result``, see ``mandates.services.results``)."""

    SCOPE_BRANCH_PATH = "presentation__mandate__loan__branch"

    execution_id = models.CharField(max_length=40, unique=True)
    presentation = models.ForeignKey(
        ScheduledPresentation, on_delete=models.PROTECT, related_name="results"
    )
    status = models.CharField(max_length=8)  # SUCCESS or BOUNCED
    return_code = models.CharField(max_length=4, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.execution_id} {self.status} {self.return_code}"


class SandboxBounceRule(models.Model):
    """For the sandbox partner: debits from this account bounce with this code."""

    account_number = models.CharField(max_length=18, unique=True)
    return_code = models.CharField(max_length=4)

    def __str__(self) -> str:
        return f"{self.account_number} > {self.return_code}"
