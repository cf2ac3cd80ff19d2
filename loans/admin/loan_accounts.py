"""Loan accounts: the list (its columns, the bucket filter, the DPD sort), the loan's page
(fixed terms, the dues panel, the schedule inline, the collection officer), co-borrowers and
instalments."""

import re

from django.contrib import admin
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from accounts.models import User
from core.admin.base import LargeTableChangeList, ReadOnlyAdminMixin
from core.money import inr
from core.templatetags.formats import day

from .. import services
from ..dues import dpd_range
from ..models import CoBorrower, Customer, Instalment, LoanAccount
from ..services.dues_refresh import DUES_FIELDS
from .customers import customer_key_lookup

LOAN_NUMBER = re.compile(r"^LN\d{10}$", re.IGNORECASE)


class CoBorrowerInline(admin.TabularInline):
    model = CoBorrower
    extra = 0
    autocomplete_fields = ["customer"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "customer":
            from accounts.scoping import scope_queryset

            kwargs["queryset"] = scope_queryset(Customer.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class InstalmentStatusColumn:
    """The schedule's status column, wherever the schedule is shown: "Overdue" for an
    instalment past its due date and not fully paid (derived as of today, IST; the stored
    status is the posting's)."""

    @admin.display(description="status")
    def status_shown(self, obj):
        shown = obj.status_on(timezone.localdate())
        if shown == "Overdue":
            return format_html('<strong class="overdue">{}</strong>', shown)
        return shown


class InstalmentStatusFilter(admin.SimpleListFilter):
    """The stored statuses, and "Overdue" (due before today and not fully paid)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*Instalment.Status.choices, ("OVERDUE", "Overdue")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "OVERDUE":
            return queryset.filter(due_date__lt=timezone.localdate()).exclude(
                status=Instalment.Status.PAID
            )
        if value in Instalment.Status.values:
            return queryset.filter(status=value)
        return queryset


class InstalmentInline(InstalmentStatusColumn, admin.TabularInline):
    model = Instalment
    extra = 0
    can_delete = False
    fields = readonly_fields = [*Instalment.SCHEDULE_FIELDS, "status_shown"]

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


SORTED_BY_DPD = "loan_list_sorted_by_dpd"  # set on the request by DuesChangeList


class BucketFilter(admin.SimpleListFilter):
    """By RBI bucket: on the bucket column (indexes ``(bucket, -id)`` and ``(branch,
    bucket, -id)``), or, when the list is sorted by DPD, on the bucket's DPD range (the same
    rows: a bucket is a range of DPD), so that ``loan_dpd`` / ``loan_branch_dpd`` give the
    page in order and the bounded count from the index alone. Both ways at 1,000,000 loans
    under a millisecond, where the bucket column with a DPD sort scanned the index past
    every loan of a higher DPD (0.8 s for SMA-1)."""

    title = "bucket"
    parameter_name = "bucket"

    def lookups(self, request, model_admin):
        return LoanAccount.Bucket.choices

    def queryset(self, request, queryset):
        bucket = self.value()
        if bucket not in LoanAccount.Bucket.values:
            return queryset
        if not getattr(request, SORTED_BY_DPD, False):
            return queryset.filter(bucket=bucket)
        low, high = dpd_range(bucket)
        queryset = queryset.filter(dpd__gte=low)
        return queryset if high is None else queryset.filter(dpd__lte=high)


class DuesChangeList(LargeTableChangeList):
    """The loan list's changelist: it tells the bucket filter whether the list is sorted by
    DPD, and ties of a sort by one column go by id in the same direction (Django adds
    ``-pk`` whatever the direction), so that one index serves each column both ways: the
    DPD sort reads ``loan_dpd`` (``-dpd, -id``) forwards for the highest first, backwards
    for the lowest."""

    def get_queryset(self, request, exclude_parameters=None):
        ordering = self.get_ordering(request, self.root_queryset)
        first = ordering[0] if ordering else None
        setattr(request, SORTED_BY_DPD, first in ("dpd", "-dpd"))
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.only(*LIST_FIELDS)  # the columns' fields, not four whole rows

    def _get_deterministic_ordering(self, ordering):
        ordering = super()._get_deterministic_ordering(ordering)
        first = ordering[0] if ordering else None
        if ordering[-1] == "-pk" and isinstance(first, str) and not first.startswith("-"):
            ordering[-1] = "pk"
        return ordering


DUES_PANEL = [
    "next_due",
    "arrears_parts",
    "dpd",
    "bucket",
    "dues_as_of_shown",
    "last_payment",
]


# What the loan list's columns read (LoanListColumns), of the loan and the rows joined by
# ``list_select_related``: the page's rows fetch only these (a field left out would cost a
# query per row: the list's query count is pinned in tests/test_changelist_queries.py).
LIST_FIELDS = [
    "loan_number",
    "status",
    "customer__name",
    "product__code",
    "branch__code",
    "outstanding_principal",
    "outstanding_interest",
    "outstanding_charges",
    *DUES_FIELDS,
]


class LoanListColumns:
    """The loan list's computed columns, from the rows joined by ``list_select_related``
    (no query per row)."""

    @admin.display(description="borrower")
    def borrower(self, obj):
        return format_html(
            '{}<br><span class="quiet nowrap">{} · {}</span>',
            obj.customer.name,
            obj.product.code,
            obj.branch.code,
        )

    @admin.display(description="outstanding")
    def total_outstanding(self, obj):
        return format_html('<span class="nowrap">{}</span>', inr(obj.total_outstanding))

    @admin.display(description="next due")
    def next_due(self, obj):
        if obj.next_due_date is None:
            return "—"
        return format_html(
            '<span class="nowrap">{}</span><br><span class="nowrap">{}</span>',
            day(obj.next_due_date),
            inr(obj.next_due_amount),
        )

    @admin.display(description="arrears")
    def arrears(self, obj):
        """The total (its parts are on the loan's page: the list fits 1366 px)."""
        if not obj.overdue_amount:
            return "—"
        return format_html('<span class="nowrap">{}</span>', inr(obj.overdue_amount))

    @admin.display(description="bucket")
    def bucket_short(self, obj):
        """SMA-1 rather than SMA-1 (31-60) (the DPD is beside it); for a loan no longer
        active, its status instead (Closed, Written off): the list has no status column."""
        if obj.status != LoanAccount.Status.ACTIVE:
            return obj.get_status_display()
        return obj.get_bucket_display().split(" ")[0]


@admin.register(LoanAccount)
class LoanAccountAdmin(LoanListColumns, ScopedModelAdmin):
    # Fits a 1366 px window beside the sidebar and the filters: the borrower's name over the
    # product and branch codes in one cell, next due as date over amount (all from the
    # joined rows); the arrears' parts on the loan's page.
    list_display = [
        "loan_number",
        "borrower",
        "total_outstanding",
        "next_due",
        "arrears",
        "dpd",
        "bucket_short",
    ]
    list_select_related = ["customer", "branch", "product"]
    list_filter = [
        "status",
        BucketFilter,
        ("branch", ScopedRelatedFilter),
        "product",
        ("disbursed_on", admin.DateFieldListFilter),
    ]
    search_fields = ["customer__name"]  # see get_search_results
    search_help_text = (
        "Loan number, customer number, PAN or mobile (exact), or part of the customer's name."
    )
    sortable_by = ["loan_number", "dpd"]
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

    @admin.display(description="arrears")
    def arrears_parts(self, obj):
        if not obj.overdue_amount:
            return "—"
        return (
            f"{inr(obj.overdue_amount)} (principal {inr(obj.overdue_principal)}, interest "
            f"{inr(obj.overdue_interest)}, charges {inr(obj.overdue_charges)})"
        )

    @admin.display(description="dues as of")
    def dues_as_of_shown(self, obj):
        return day(obj.dues_as_of)

    @admin.display(description="last payment")
    def last_payment(self, obj):
        if obj.last_payment_date is None:
            return "—"
        return f"{inr(obj.last_payment_amount)} on {day(obj.last_payment_date)}"

    def get_changelist(self, request, **kwargs):
        return DuesChangeList

    def get_readonly_fields(self, request, obj=None):
        # The terms of a disbursed loan are fixed: the schedule was generated from them.
        if obj is not None:
            fixed = [*TERMS, *self.readonly_fields, *DUES_PANEL]
            if not request.user.has_perm(services.ASSIGN_COLLECTION_OFFICER):
                fixed.append("collection_officer")
            return fixed
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        return TERMS if obj is None else super().get_fields(request, obj)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return super().get_fieldsets(request, obj)
        fields = [f for f in self.get_fields(request, obj) if f not in DUES_PANEL]
        return [
            (None, {"fields": fields}),
            ("Dues", {"fields": DUES_PANEL, "classes": ["dues-panel"]}),
        ]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        officer = form.base_fields.get("collection_officer")
        if obj is not None and officer is not None:  # the loan's branch's own active staff
            officer.queryset = User.objects.filter(
                is_active=True, level=User.Level.BRANCH, home_branch_id=obj.branch_id
            ).order_by("first_name", "last_name", "username")
            officer.label_from_instance = lambda user: user.get_full_name() or user.username
        if obj is None and "interest_rate" in form.base_fields:
            form.base_fields["interest_rate"].required = False
            form.base_fields["interest_rate"].help_text = "Leave empty for the product's rate."
        return form

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if LOAN_NUMBER.match(term):
            return queryset.filter(loan_number=term.upper()), False
        lookup = customer_key_lookup(term, prefix="customer__")
        if lookup is not None:
            return queryset.filter(**lookup), False
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


@admin.register(Instalment)
class InstalmentAdmin(InstalmentStatusColumn, ReadOnlyAdminMixin, ScopedModelAdmin):
    list_display = ["loan", *Instalment.SCHEDULE_FIELDS, "status_shown"]
    list_select_related = ["loan"]
    list_filter = [InstalmentStatusFilter, ("due_date", admin.DateFieldListFilter)]
    search_fields = ["=loan__loan_number"]
    sortable_by = ["due_date"]
