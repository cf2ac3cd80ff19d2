import re

from django.contrib import admin
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from core.admin.approval_request import ApprovalRequestPage, ReasonForm
from core.admin.base import BackOfficeModelAdmin, ReadOnlyAdminMixin, is_set_filter
from core.money import inr

from . import services
from .models import (
    BankingPartner,
    CoBorrower,
    CollectionAccount,
    Customer,
    CustomerBankAccount,
    Instalment,
    LoanAccount,
    LoanCharge,
    LoanProduct,
)

LOAN_NUMBER = re.compile(r"^LN\d{10}$", re.IGNORECASE)
CUSTOMER_NUMBER = re.compile(r"^C\d{10}$", re.IGNORECASE)
MOBILE = re.compile(r"^[6-9]\d{9}$")
PAN = re.compile(r"^[A-Z]{5}\d{4}[A-Z]$", re.IGNORECASE)


@admin.register(LoanProduct)
class LoanProductAdmin(BackOfficeModelAdmin):
    list_display = [
        "code",
        "name",
        "interest_rate",
        "min_tenure_months",
        "max_tenure_months",
        "emi_frequency",
        "bounce_charge",
        "gst_rate_on_charges",
        "is_active",
    ]
    list_filter = ["emi_frequency", "is_active"]
    search_fields = ["code", "name"]


class CollectionAccountInline(admin.TabularInline):
    model = CollectionAccount
    extra = 0


@admin.register(BankingPartner)
class BankingPartnerAdmin(BackOfficeModelAdmin):
    list_display = ["name", "code", "ifsc", "nach_utility_code", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "code", "ifsc"]
    inlines = [CollectionAccountInline]


@admin.register(CollectionAccount)
class CollectionAccountAdmin(BackOfficeModelAdmin):
    list_display = ["account_name", "partner", "account_number_masked", "ifsc", "is_active"]
    list_select_related = ["partner"]
    list_filter = ["partner", "is_active"]
    search_fields = ["account_name", "=account_number"]


class CustomerBankAccountInline(admin.TabularInline):
    model = CustomerBankAccount
    extra = 0


@admin.register(Customer)
class CustomerAdmin(ScopedModelAdmin):
    list_display = [
        "customer_number",
        "name",
        "mobile_masked",
        "pan_masked",
        "branch",
        "created_at",
    ]
    list_select_related = ["branch"]
    list_filter = [("branch", ScopedRelatedFilter), ("created_at", admin.DateFieldListFilter)]
    search_fields = ["name"]  # see get_search_results: exact keys first, then name by trigram
    search_help_text = "Customer number, mobile or PAN (exact), or part of the name."
    sortable_by = ["customer_number", "created_at"]
    lean_rows = True
    readonly_fields = ["customer_number", "created_at"]
    inlines = [CustomerBankAccountInline]

    @admin.display(description="mobile")
    def mobile_masked(self, obj):
        return obj.mobile_masked

    @admin.display(description="PAN")
    def pan_masked(self, obj):
        return obj.pan_masked

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if CUSTOMER_NUMBER.match(term):
            return queryset.filter(customer_number=term.upper()), False
        if MOBILE.match(term):
            return queryset.filter(mobile=term), False
        if PAN.match(term):
            return queryset.filter(pan=term.upper()), False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request, obj, form, change):
        if change:
            services.customer_update(
                customer_id=obj.pk,
                actor=request.user,
                **{name: form.cleaned_data[name] for name in form.changed_data},
            )
            return
        created = services.customer_create(actor=request.user, **form.cleaned_data)
        obj.pk, obj.customer_number = created.pk, created.customer_number


class CoBorrowerInline(admin.TabularInline):
    model = CoBorrower
    extra = 0
    autocomplete_fields = ["customer"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "customer":
            from accounts.scoping import scope_queryset

            kwargs["queryset"] = scope_queryset(Customer.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class InstalmentInline(admin.TabularInline):
    model = Instalment
    extra = 0
    can_delete = False
    fields = readonly_fields = [
        "number",
        "due_date",
        "principal_due",
        "interest_due",
        "charges_due",
        "principal_paid",
        "interest_paid",
        "charges_paid",
        "status",
    ]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


TERMS = [
    "customer",
    "product",
    "branch",
    "sanctioned_amount",
    "disbursed_amount",
    "interest_rate",
    "tenure_months",
    "due_day",
    "disbursed_on",
]


@admin.register(LoanAccount)
class LoanAccountAdmin(ScopedModelAdmin):
    list_display = [
        "loan_number",
        "customer",
        "branch",
        "product",
        "disbursed_amount",
        "emi_amount",
        "total_outstanding",
        "status",
        "disbursed_on",
    ]
    list_select_related = ["customer", "branch", "product"]
    list_filter = [
        "status",
        ("branch", ScopedRelatedFilter),
        "product",
        ("disbursed_on", admin.DateFieldListFilter),
    ]
    search_fields = ["customer__name"]  # see get_search_results
    search_help_text = "Loan number, customer number or mobile (exact), or part of the name."
    sortable_by = ["loan_number", "disbursed_on"]
    # A million-row list is for finding a loan (search, filters), not for reading page by
    # page: 25 rows keep the page within its 50 ms budget (bench/loan_changelist.py);
    # rendering costs about 0.25 ms of CPU per row.
    list_per_page = 25
    lean_rows = True
    autocomplete_fields = ["customer"]
    readonly_fields = [
        "loan_number",
        "emi_amount",
        "status",
        "outstanding_principal",
        "outstanding_interest",
        "outstanding_charges",
        "created_at",
        "updated_at",
    ]
    inlines = [CoBorrowerInline, InstalmentInline]

    @admin.display(description="outstanding")
    def total_outstanding(self, obj):
        return obj.total_outstanding

    def get_readonly_fields(self, request, obj=None):
        # The terms of a disbursed loan are fixed: the schedule was generated from them.
        if obj is not None:
            return [*TERMS, *self.readonly_fields]
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        return TERMS if obj is None else super().get_fields(request, obj)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None and "interest_rate" in form.base_fields:
            form.base_fields["interest_rate"].required = False
            form.base_fields["interest_rate"].help_text = "Leave empty for the product's rate."
        return form

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if LOAN_NUMBER.match(term):
            return queryset.filter(loan_number=term.upper()), False
        if CUSTOMER_NUMBER.match(term):
            return queryset.filter(customer__customer_number=term.upper()), False
        if MOBILE.match(term):
            return queryset.filter(customer__mobile=term), False
        return super().get_search_results(request, queryset, search_term)

    @transaction.atomic
    def save_model(self, request, obj, form, change):
        if change:
            services.loan_update(
                loan_id=obj.pk,
                actor=request.user,
                **{name: form.cleaned_data[name] for name in form.changed_data},
            )
            return
        terms = {name: form.cleaned_data.get(name) for name in TERMS}
        created = services.loan_account_create(actor=request.user, **terms)
        obj.pk = created.pk
        obj.loan_number = created.loan_number


@admin.register(CoBorrower)
class CoBorrowerAdmin(ScopedModelAdmin):
    list_display = ["loan", "customer", "relationship", "role"]
    list_select_related = ["loan", "customer"]
    list_filter = ["role", "relationship"]
    autocomplete_fields = ["loan", "customer"]
    search_fields = ["=loan__loan_number", "=customer__customer_number"]


@admin.register(CustomerBankAccount)
class CustomerBankAccountAdmin(ScopedModelAdmin):
    list_display = ["customer", "bank_name", "account_number_masked", "ifsc", "account_type"]
    list_select_related = ["customer"]
    list_filter = ["account_type"]
    autocomplete_fields = ["customer"]
    search_fields = ["=customer__customer_number", "=ifsc"]

    @admin.display(description="account number")
    def account_number_masked(self, obj):
        return obj.account_number_masked


@admin.register(Instalment)
class InstalmentAdmin(ReadOnlyAdminMixin, ScopedModelAdmin):
    list_display = [
        "loan",
        "number",
        "due_date",
        "principal_due",
        "interest_due",
        "charges_due",
        "principal_paid",
        "interest_paid",
        "charges_paid",
        "status",
    ]
    list_select_related = ["loan"]
    list_filter = ["status", ("due_date", admin.DateFieldListFilter)]
    search_fields = ["=loan__loan_number"]
    sortable_by = ["due_date"]


# --- Charges (bounce charges), waived only through maker-checker -------------------------

WAIVER_KIND = "CHARGE_WAIVER"
WAIVER_PERMISSION = "loans.request_waiver"


class WaiverRequestForm(ReasonForm):
    reason_help = "Why the charge should be waived (e.g. the bank's error). A checker reads it."
    reason_missing = "Give a reason for the waiver."


class WaiverRequestPage(ApprovalRequestPage):
    """A charge's "Request waiver": what is unpaid of it goes when a checker approves."""

    url_path = url_name = "waiver"
    form_class = WaiverRequestForm
    permission = WAIVER_PERMISSION
    submit_label = "Request waiver"

    def request_approval(self, request, obj, form):
        return services.loan_charge_waiver_request(
            charge_id=obj.pk, reason=form.cleaned_data["reason"], actor=request.user
        )

    def what(self, form) -> str:
        return "Waiver"

    def title(self, obj) -> str:
        return "Request a waiver"

    def context(self, request, obj, form) -> dict:
        return {
            "intro": "The waiver removes what is still unpaid of this charge from the loan. "
            "It happens only when another person with the checker's permission approves it.",
            "rows": [
                ("Loan", obj.loan.loan_number),
                ("Charge", obj.get_kind_display()),
                ("Total", f"{inr(obj.total)} ({inr(obj.amount)} + GST {inr(obj.gst)})"),
                ("Raised for", obj.reason),
            ],
        }


WaivedFilter = is_set_filter("waived_at", "waived", "Waived", "Not waived")


@admin.register(LoanCharge)
class LoanChargeAdmin(ReadOnlyAdminMixin, ScopedModelAdmin):
    """Read-only: charges are raised by their cause (a NACH bounce) and waived only when a
    checker approves a waiver request (``loans.services.loan_charge_waiver_request``)."""

    list_display = [
        "loan",
        "kind",
        "amount",
        "gst",
        "total",
        "created_at",
        "waived",
        "waiver",
    ]
    list_select_related = ["loan"]
    list_filter = [
        "kind",
        WaivedFilter,
        ("loan__branch", ScopedRelatedFilter),
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=loan__loan_number", "=reference"]
    search_help_text = "Loan number or reference (exact)."
    sortable_by = ["created_at"]
    fields = readonly_fields = [
        "loan",
        "instalment",
        "kind",
        "amount",
        "gst",
        "total",
        "reference",
        "reason",
        "created_at",
        "waived_amount",
        "waived_at",
        "waiver",
    ]

    def get_queryset(self, request):
        from approvals.models import ApprovalRequest

        pending = ApprovalRequest.objects.filter(
            kind=WAIVER_KIND,
            status=ApprovalRequest.Status.PENDING,
            entity=Concat(
                Value("loans.loancharge#"),
                Cast(OuterRef("pk"), CharField()),
                output_field=CharField(),
            ),
        )
        may_request = request.user.has_perm(WAIVER_PERMISSION)
        return (
            super()
            .get_queryset(request)
            .annotate(waiver_pending=Exists(pending), may_request_waiver=Value(may_request))
        )

    @admin.display(description="waived", boolean=True)
    def waived(self, obj) -> bool:
        return obj.waived_at is not None

    @admin.display(description="waiver")
    def waiver(self, obj):
        if obj.waived_at:
            return f"waived {inr(obj.waived_amount)}"
        if getattr(obj, "waiver_pending", False):
            return "requested, waiting for a checker"
        if getattr(obj, "may_request_waiver", False):
            return format_html(
                '<a href="{}" class="waiver-request-link">Request waiver</a>',
                reverse("admin:loans_loancharge_waiver", args=[obj.pk]),
            )
        return "—"

    def get_urls(self):
        return [WaiverRequestPage(self).url(), *super().get_urls()]
