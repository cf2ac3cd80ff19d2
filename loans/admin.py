import re

from django.contrib import admin
from django.db import transaction

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter

from . import services
from .models import (
    BankingPartner,
    CoBorrower,
    CollectionAccount,
    Customer,
    CustomerBankAccount,
    Instalment,
    LoanAccount,
    LoanProduct,
)

LOAN_NUMBER = re.compile(r"^LN\d{10}$", re.IGNORECASE)
CUSTOMER_NUMBER = re.compile(r"^C\d{10}$", re.IGNORECASE)
MOBILE = re.compile(r"^[6-9]\d{9}$")
PAN = re.compile(r"^[A-Z]{5}\d{4}[A-Z]$", re.IGNORECASE)


@admin.register(LoanProduct)
class LoanProductAdmin(admin.ModelAdmin):
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
class BankingPartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "ifsc", "nach_utility_code", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "code", "ifsc"]
    inlines = [CollectionAccountInline]


@admin.register(CollectionAccount)
class CollectionAccountAdmin(admin.ModelAdmin):
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
            return super().save_model(request, obj, form, change)
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
            return super().save_model(request, obj, form, change)
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
class InstalmentAdmin(ScopedModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
