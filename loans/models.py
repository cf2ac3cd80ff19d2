"""Loan master data: products, banking partners, customers, loan accounts, schedules.

Money is ``core.money.MoneyField`` (14 digits, 2 places); PII (PAN, mobile, bank
account numbers) is stored in full for the branch that serves the customer and shown
masked in lists, logs, audit events and the API (``*_masked`` properties).
"""

from datetime import date
from decimal import Decimal

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from accounts.models import MOBILE_VALIDATOR, Branch, User
from audit.masking import mask_value
from core.money import MoneyField, inr

from .dues import is_overdue

ZERO = Decimal("0.00")
PAN_VALIDATOR = RegexValidator(
    r"^[A-Z]{5}[0-9]{4}[A-Z]$", "Enter a valid PAN: 5 letters, 4 digits, 1 letter (ABCDE1234F)."
)
IFSC_VALIDATOR = RegexValidator(
    r"^[A-Z]{4}0[A-Z0-9]{6}$", "Enter a valid IFSC: 4 letters, a zero, 6 letters or digits."
)
ACCOUNT_NUMBER_VALIDATOR = RegexValidator(
    r"^[0-9]{9,18}$", "Enter a bank account number of 9 to 18 digits."
)
UTILITY_CODE_VALIDATOR = RegexValidator(
    r"^[A-Z0-9]{6,20}$", "Enter the NACH utility code: 6 to 20 capital letters or digits."
)


def money_field(**kwargs) -> MoneyField:
    kwargs.setdefault("validators", [MinValueValidator(ZERO)])
    return MoneyField(**kwargs)


class LoanProduct(models.Model):
    class Frequency(models.TextChoices):
        MONTHLY = "MONTHLY", "Monthly"
        FORTNIGHTLY = "FORTNIGHTLY", "Fortnightly"
        WEEKLY = "WEEKLY", "Weekly"

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    interest_rate = models.DecimalField(
        "interest rate (% a year)",
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("60"))],
    )
    min_tenure_months = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    max_tenure_months = models.PositiveSmallIntegerField(validators=[MaxValueValidator(360)])
    emi_frequency = models.CharField(max_length=12, choices=Frequency, default=Frequency.MONTHLY)
    bounce_charge = money_field(default=Decimal("500.00"))
    gst_rate_on_charges = models.DecimalField(
        "GST on charges (%)",
        max_digits=5,
        decimal_places=2,
        default=Decimal("18.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("28"))],
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_tenure_months__lte=F("max_tenure_months")),
                name="product_tenure_range_ordered",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        if (
            self.min_tenure_months
            and self.max_tenure_months
            and self.min_tenure_months > self.max_tenure_months
        ):
            raise ValidationError(
                {"max_tenure_months": "The longest tenure cannot be below the shortest."}
            )


class BankingPartner(models.Model):
    """A sponsor bank that presents NACH debits and holds collection accounts."""

    code = models.SlugField(max_length=30, unique=True, help_text="Used in the partner's API URL.")
    name = models.CharField(max_length=100)
    ifsc = models.CharField("IFSC", max_length=11, validators=[IFSC_VALIDATOR])
    nach_utility_code = models.CharField(max_length=20, validators=[UTILITY_CODE_VALIDATOR])
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CollectionAccount(models.Model):
    partner = models.ForeignKey(
        BankingPartner, on_delete=models.PROTECT, related_name="collection_accounts"
    )
    account_name = models.CharField(max_length=100)
    account_number = models.CharField(max_length=18, validators=[ACCOUNT_NUMBER_VALIDATOR])
    ifsc = models.CharField("IFSC", max_length=11, validators=[IFSC_VALIDATOR])
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "account_number"], name="collection_account_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.partner} {self.account_number_masked}"

    @property
    def account_number_masked(self) -> str:
        return mask_value(self.account_number)


class Customer(models.Model):
    SCOPE_BRANCH_PATH = "branch"

    customer_number = models.CharField(max_length=20, unique=True, editable=False)
    name = models.CharField(max_length=120)
    mobile = models.CharField(max_length=10, validators=[MOBILE_VALIDATOR])
    email = models.EmailField(blank=True)
    pan = models.CharField("PAN", max_length=10, validators=[PAN_VALIDATOR])
    date_of_birth = models.DateField(null=True, blank=True)
    address = models.TextField(blank=True)
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="customers")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["branch", "-id"], name="customer_branch_recent"),
            models.Index(fields=["mobile"], name="customer_mobile"),
            models.Index(fields=["pan"], name="customer_pan"),
            # The admin's name search is icontains, i.e. UPPER(name) LIKE: index that.
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="customer_name_upper_trgm"),
        ]
        permissions = [
            (
                "request_customer_change",
                "Can ask to change a customer's mobile, PAN or bank account",
            ),
            (
                "approve_customer_change",
                "Can approve a change of a customer's mobile, PAN or bank account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_number} {self.name}"

    @property
    def pan_masked(self) -> str:
        return mask_value(self.pan)

    @property
    def mobile_masked(self) -> str:
        return mask_value(self.mobile)


class CustomerBankAccount(models.Model):
    SCOPE_BRANCH_PATH = "customer__branch"

    class AccountType(models.TextChoices):
        SAVINGS = "SAVINGS", "Savings"
        CURRENT = "CURRENT", "Current"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="bank_accounts")
    holder_name = models.CharField(max_length=120)
    bank_name = models.CharField(max_length=100)
    account_number = models.CharField(max_length=18, validators=[ACCOUNT_NUMBER_VALIDATOR])
    ifsc = models.CharField("IFSC", max_length=11, validators=[IFSC_VALIDATOR])
    account_type = models.CharField(max_length=10, choices=AccountType, default=AccountType.SAVINGS)
    is_primary = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "account_number", "ifsc"], name="customer_bank_account_unique"
            ),
            models.UniqueConstraint(
                fields=["customer"], condition=Q(is_primary=True), name="one_primary_bank_account"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bank_name} {self.account_number_masked}"

    @property
    def account_number_masked(self) -> str:
        return mask_value(self.account_number)


# What the collection sheet's totals and filters read, carried in its indexes so that the
# totals of a branch of 100,000 loans come from the indexes alone.
SHEET_FIGURES = [
    "next_due_amount",
    "overdue_principal",
    "overdue_interest",
    "overdue_charges",
    "bucket",
    "collection_officer",
]
SHEET_OFFICER_FIGURES = [name for name in SHEET_FIGURES if name != "collection_officer"]


class LoanAccount(models.Model):
    SCOPE_BRANCH_PATH = "branch"

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        CLOSED = "CLOSED", "Closed"
        WRITTEN_OFF = "WRITTEN_OFF", "Written off"

    class Bucket(models.TextChoices):
        """RBI's classification by days past due (SMA: special mention account)."""

        CURRENT = "CURRENT", "Current"
        SMA0 = "SMA0", "SMA-0 (1-30)"
        SMA1 = "SMA1", "SMA-1 (31-60)"
        SMA2 = "SMA2", "SMA-2 (61-90)"
        NPA = "NPA", "NPA (90+)"

    loan_number = models.CharField(max_length=20, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="loans")
    product = models.ForeignKey(LoanProduct, on_delete=models.PROTECT, related_name="loans")
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="loans")
    sanctioned_amount = money_field(validators=[MinValueValidator(Decimal("1000.00"))])
    disbursed_amount = money_field(validators=[MinValueValidator(Decimal("1000.00"))])
    interest_rate = models.DecimalField(
        "interest rate (% a year)",
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("60"))],
    )
    tenure_months = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    emi_amount = money_field(default=ZERO, editable=False)
    due_day = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(28)],
        help_text="Day of the month the EMI falls due (1 to 28).",
    )
    disbursed_on = models.DateField(default=date.today)
    status = models.CharField(max_length=12, choices=Status, default=Status.ACTIVE, editable=False)
    # What the borrower still owes, by component, over the whole schedule; the ledger
    # (payments) and charges keep them equal to the instalments' dues less their paid amounts.
    outstanding_principal = money_field(default=ZERO, editable=False)
    outstanding_interest = money_field(default=ZERO, editable=False)
    outstanding_charges = money_field(default=ZERO, editable=False)
    # Dues as of ``dues_as_of`` (kept by the posting and a nightly refresh, loans.dues):
    # the next instalment not yet fallen due, what is overdue (past due and unpaid, by
    # component), days past due from the oldest unpaid due, and the RBI bucket of that.
    next_due_date = models.DateField(null=True, blank=True, editable=False)
    next_due_amount = money_field(default=ZERO, editable=False)
    overdue_principal = money_field(default=ZERO, editable=False)
    overdue_interest = money_field(default=ZERO, editable=False)
    overdue_charges = money_field(default=ZERO, editable=False)
    dpd = models.PositiveIntegerField("DPD", default=0, editable=False)
    bucket = models.CharField(max_length=8, choices=Bucket, default=Bucket.CURRENT, editable=False)
    dues_as_of = models.DateField(null=True, blank=True, editable=False)
    last_payment_date = models.DateField(null=True, blank=True, editable=False)
    last_payment_amount = money_field(default=ZERO, editable=False)
    # Who calls on and collects from this borrower: a user of the loan's branch, set by
    # the branch manager; the collection sheet filters by it.
    collection_officer = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="collection_loans",
        help_text="The branch's officer who collects this loan's dues.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["branch", "-id"], name="loan_branch_recent"),
            models.Index(fields=["status", "-id"], name="loan_status_recent"),
            models.Index(fields=["branch", "status", "-id"], name="loan_branch_status_recent"),
            models.Index(fields=["product", "-id"], name="loan_product_recent"),
            models.Index(fields=["disbursed_on"], name="loan_disbursed_on"),
            # the loan list's bucket filter and DPD sort, for head office and for a branch
            # (a DPD sort's ties follow its direction: LoanAccountAdmin's changelist)
            models.Index(fields=["bucket", "-id"], name="loan_bucket_recent"),
            models.Index(fields=["branch", "bucket", "-id"], name="loan_branch_bucket_recent"),
            models.Index(fields=["-dpd", "-id"], name="loan_dpd"),
            models.Index(fields=["branch", "-dpd", "-id"], name="loan_branch_dpd"),
            # The collection sheet (desk.sheet_selectors): a branch's open loans, most days
            # past due first (its page, and its overdue total read from the index alone);
            # due on or before a date (that total); paid on a date; one bucket's page.
            models.Index(
                fields=["branch", "-dpd", "loan_number"],
                include=[*SHEET_FIGURES, "next_due_date"],
                condition=Q(status="ACTIVE"),
                name="loan_sheet_dpd",
            ),
            models.Index(
                fields=["branch", "next_due_date"],
                include=[*SHEET_FIGURES, "dpd"],
                condition=Q(status="ACTIVE"),
                name="loan_sheet_due",
            ),
            models.Index(
                fields=["branch", "last_payment_date"],
                condition=Q(status="ACTIVE"),
                name="loan_sheet_paid",
            ),
            models.Index(
                fields=["branch", "bucket", "-dpd", "loan_number"],
                condition=Q(status="ACTIVE"),
                name="loan_sheet_bucket",
            ),
            # One collection officer's sheet: the officer's overdue and due totals and page
            # from this index alone (by loan_sheet_dpd, the branch's every overdue loan was
            # read and filtered by officer: 57 ms at 120,000 loans).
            models.Index(
                fields=["branch", "collection_officer", "-dpd", "loan_number"],
                include=[*SHEET_OFFICER_FIGURES, "next_due_date", "last_payment_date"],
                condition=Q(status="ACTIVE"),
                name="loan_sheet_officer",
            ),
        ]
        permissions = [
            ("assign_collection_officer", "Can assign a loan's collection officer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(disbursed_amount__lte=F("sanctioned_amount")),
                name="loan_disbursed_within_sanction",
            ),
            models.CheckConstraint(
                condition=Q(due_day__gte=1, due_day__lte=28), name="loan_due_day_1_to_28"
            ),
            models.CheckConstraint(
                condition=Q(
                    outstanding_principal__gte=0,
                    outstanding_interest__gte=0,
                    outstanding_charges__gte=0,
                ),
                name="loan_outstanding_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.loan_number

    @property
    def overdue_amount(self) -> Decimal:
        """Arrears: what fell due and is unpaid (principal, interest, charges)."""
        return self.overdue_principal + self.overdue_interest + self.overdue_charges

    @property
    def total_outstanding(self) -> Decimal:
        return self.outstanding_principal + self.outstanding_interest + self.outstanding_charges

    def clean(self) -> None:
        errors = {}
        product = self.product if self.product_id else None
        if (
            product
            and self.tenure_months
            and not (product.min_tenure_months <= self.tenure_months <= product.max_tenure_months)
        ):
            errors["tenure_months"] = (
                f"{product.code} allows a tenure of {product.min_tenure_months} to "
                f"{product.max_tenure_months} months."
            )
        if (
            self.disbursed_amount is not None
            and self.sanctioned_amount is not None
            and self.disbursed_amount > self.sanctioned_amount
        ):
            errors["disbursed_amount"] = "The disbursed amount cannot exceed the sanctioned amount."
        if self.customer_id and self.branch_id and self.customer.branch_id != self.branch_id:
            errors["customer"] = "The customer belongs to another branch."
        if self.collection_officer_id and (
            problem := collection_officer_problem(self.collection_officer, self.branch_id)
        ):
            errors["collection_officer"] = problem
        if errors:
            raise ValidationError(errors)


def collection_officer_problem(officer: User, branch_id: int | None) -> str | None:
    """Why ``officer`` cannot collect a loan of ``branch_id`` (None when they can): an
    active member of that branch's own staff."""
    if not officer.is_active:
        return f"{officer.get_full_name() or officer.username} is not an active user."
    if officer.level != User.Level.BRANCH or officer.home_branch_id != branch_id:
        return "The collection officer must be a user of the loan's branch."
    return None


class CoBorrower(models.Model):
    SCOPE_BRANCH_PATH = "loan__branch"

    class Relationship(models.TextChoices):
        SPOUSE = "SPOUSE", "Spouse"
        PARENT = "PARENT", "Parent"
        CHILD = "CHILD", "Child"
        SIBLING = "SIBLING", "Sibling"
        BUSINESS_PARTNER = "BUSINESS_PARTNER", "Business partner"
        OTHER = "OTHER", "Other"

    class Role(models.TextChoices):
        CO_BORROWER = "CO_BORROWER", "Co-borrower"
        GUARANTOR = "GUARANTOR", "Guarantor"

    loan = models.ForeignKey(LoanAccount, on_delete=models.CASCADE, related_name="co_borrowers")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="co_borrowings")
    relationship = models.CharField(max_length=20, choices=Relationship)
    role = models.CharField(max_length=12, choices=Role, default=Role.CO_BORROWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["loan", "customer"], name="co_borrower_once_per_loan")
        ]

    def __str__(self) -> str:
        return f"{self.customer} ({self.get_role_display()}) on {self.loan}"

    def clean(self) -> None:
        if self.loan_id and self.customer_id and self.loan.customer_id == self.customer_id:
            raise ValidationError(
                {"customer": "The borrower cannot also be a co-borrower on the same loan."}
            )


class Instalment(models.Model):
    SCOPE_BRANCH_PATH = "loan__branch"
    # what a schedule shows of each instalment, and all that its dues are computed from
    SCHEDULE_FIELDS = (
        "number",
        "due_date",
        "principal_due",
        "interest_due",
        "charges_due",
        "principal_paid",
        "interest_paid",
        "charges_paid",
    )

    class Status(models.TextChoices):
        DUE = "DUE", "Due"
        PARTIALLY_PAID = "PARTIALLY_PAID", "Partially paid"
        PAID = "PAID", "Paid"

    loan = models.ForeignKey(LoanAccount, on_delete=models.CASCADE, related_name="instalments")
    number = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    principal_due = money_field()
    interest_due = money_field()
    charges_due = money_field(default=ZERO)
    principal_paid = money_field(default=ZERO)
    interest_paid = money_field(default=ZERO)
    charges_paid = money_field(default=ZERO)
    status = models.CharField(max_length=16, choices=Status, default=Status.DUE)

    class Meta:
        ordering = ["loan", "number"]
        indexes = [
            models.Index(fields=["due_date", "status"], name="instalment_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["loan", "number"], name="instalment_number_unique"),
            models.CheckConstraint(
                condition=Q(
                    principal_paid__lte=F("principal_due"),
                    interest_paid__lte=F("interest_due"),
                    charges_paid__lte=F("charges_due"),
                ),
                name="instalment_paid_within_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.loan} #{self.number} due {self.due_date:%d %b %Y}"

    @property
    def total_due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.charges_due

    @property
    def total_paid(self) -> Decimal:
        return self.principal_paid + self.interest_paid + self.charges_paid

    def status_on(self, day: date) -> str:
        """The status to show on ``day``: "Overdue" when the instalment fell due before it
        and is not fully paid (derived, never stored: the posting keeps ``status``)."""
        if is_overdue(self, day):
            return "Overdue"
        return self.get_status_display()

    @property
    def derived_status(self) -> str:
        """What the status should be, from the amounts due and paid."""
        if self.total_paid == 0:
            return self.Status.DUE
        if self.total_paid >= self.total_due:
            return self.Status.PAID
        return self.Status.PARTIALLY_PAID


class LoanCharge(models.Model):
    """A charge raised on a loan (a NACH bounce), added to an instalment's charges due so
    that the next payment's allocation collects it first; waived only through
    maker-checker."""

    SCOPE_BRANCH_PATH = "loan__branch"

    class Kind(models.TextChoices):
        BOUNCE = "BOUNCE", "Bounce charge"
        MIGRATED = "MIGRATED", "Brought forward from the previous system"

    loan = models.ForeignKey(LoanAccount, on_delete=models.PROTECT, related_name="charges")
    instalment = models.ForeignKey(Instalment, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind)
    amount = money_field()
    gst = money_field()
    total = money_field()
    reference = models.CharField(
        max_length=60, unique=True, help_text="What raised it (e.g. the NACH execution id)."
    )
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    waived_amount = money_field(default=ZERO)
    waived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("request_waiver", "Can ask to waive a charge"),
            ("approve_waiver", "Can approve a charge waiver"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {inr(self.total)} on {self.loan}"
