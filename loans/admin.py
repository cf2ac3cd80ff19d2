import re

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from accounts.models import User, mobile_digits
from core.admin.approval_request import ApprovalRequestPage, ReasonForm
from core.admin.base import BackOfficeModelAdmin, ReadOnlyAdminMixin, is_set_filter
from core.money import inr
from core.templatetags.formats import day

from . import services
from .dues import dpd_range
from .forms import CustomerChangeForm
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
from .panels import customer_panels_html
from .selectors import customer_change_pending
from .services import Change

CHANGE_REQUEST_PERMISSION = "loans.request_customer_change"
LOAN_NUMBER = re.compile(r"^LN\d{10}$", re.IGNORECASE)
CUSTOMER_NUMBER = re.compile(r"^C\d{10}$", re.IGNORECASE)
MOBILE = re.compile(r"^[6-9]\d{9}$")
PAN = re.compile(r"^[A-Z]{5}\d{4}[A-Z]$", re.IGNORECASE)


def customer_key_lookup(term: str, prefix: str = "") -> dict[str, str] | None:
    """The exact lookup a search term is, on the customer (``prefix`` reaches it from
    another model): a customer number, a PAN in any case, a mobile as people type it (+91,
    91 or 0 first, spaces, dashes); None for anything else (a name). Each is an indexed
    column, so the search is an index scan at any size."""
    term = term.strip()
    if CUSTOMER_NUMBER.match(term):
        return {f"{prefix}customer_number": term.upper()}
    compact = re.sub(r"\s", "", term).upper()
    if PAN.match(compact):
        return {f"{prefix}pan": compact}
    mobile = mobile_digits(term)
    if MOBILE.match(mobile):
        return {f"{prefix}mobile": mobile}
    return None


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
    """A new customer's bank accounts are entered with the customer; afterwards they change
    only through a change request (maker-checker): read-only here."""

    model = CustomerBankAccount
    extra = 0

    def has_add_permission(self, request, obj=None):
        return obj is None and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is None and super().has_delete_permission(request, obj)


class CustomerChangePage(ApprovalRequestPage):
    """ "Request a change" of a customer's mobile, PAN or bank accounts
    (``?change=mobile|pan|bank_add|bank_change|bank_remove|bank_primary&account=<id>``):
    the new value and a reason; a checker applies it (``services.customer_change_request``)."""

    url_path = "request-change"
    url_name = "request_change"
    form_class = CustomerChangeForm
    permission = CHANGE_REQUEST_PERMISSION
    submit_label = "Request the change"

    def _change(self, request, obj) -> tuple[str, CustomerBankAccount | None]:
        change = request.GET.get("change", "")
        if change not in Change.LABELS:
            raise Http404("No such change.")
        account = None
        if change in Change.ON_ACCOUNT:
            account_id = request.GET.get("account", "")
            account = (
                obj.bank_accounts.filter(pk=int(account_id)).first()
                if account_id.isascii() and account_id.isdigit()
                else None
            )
            if account is None:
                raise Http404("No such bank account of this customer.")
        return change, account

    def get_form(self, request, obj):
        change, account = self._change(request, obj)
        data = request.POST if request.method == "POST" else None
        return CustomerChangeForm(data, customer=obj, change=change, account=account)

    def request_approval(self, request, obj, form):
        return services.customer_change_request(
            customer_id=obj.pk,
            change=form.change,
            new=form.new_values,
            account_id=form.account.pk if form.account else None,
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )

    def what(self, form) -> str:
        return Change.LABELS[form.change]

    def title(self, obj) -> str:
        return f"Request a change of {obj.name}'s details"

    def crumb(self, obj) -> str:
        return "Request a change"

    def context(self, request, obj, form) -> dict:
        rows = [("Customer", f"{obj.customer_number} {obj.name}"), ("Change", self.what(form))]
        if form.change in (Change.MOBILE, Change.PAN):
            rows.append((f"{services.GUARDED_FIELDS[form.change]} now", getattr(obj, form.change)))
        if form.account is not None:
            account = form.account
            rows.append(
                (
                    "Account",
                    f"{account.bank_name} {account.account_number} ({account.ifsc}), "
                    f"{account.holder_name}{', primary' if account.is_primary else ''}",
                )
            )
        return {
            "intro": "The change is made only when another person with the checker's "
            "permission (branch manager or operations) approves it in the approvals inbox.",
            "rows": rows,
        }


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
    search_help_text = "Customer number, PAN or mobile (exact), or part of the name."
    sortable_by = ["customer_number", "created_at"]
    lean_rows = True
    readonly_fields = ["customer_number", "created_at"]
    inlines = [CustomerBankAccountInline]
    change_form_template = "admin/loans/customer/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        # Created with them; afterwards they change through maker-checker only.
        if obj is not None:
            return [*self.readonly_fields, *services.GUARDED_FIELDS]
        return self.readonly_fields

    def get_urls(self):
        return [CustomerChangePage(self).url(), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, unquote(object_id))
        extra = {}
        if customer is not None:
            extra = {
                "panels": customer_panels_html(
                    customer=customer, user=request.user, request=request
                ),
                "change_requests": self._change_requests(request, customer),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _change_requests(self, request, customer) -> dict | None:
        """The "Request a change" links of the page, or the change waiting for a checker."""
        if not request.user.has_perm(CHANGE_REQUEST_PERMISSION):
            return None
        pending = customer_change_pending(customer=customer)
        base = reverse("admin:loans_customer_request_change", args=[customer.pk])
        accounts = [
            {
                "account": account,
                "links": [
                    (label, f"{base}?change={change}&account={account.pk}")
                    for change, label in (
                        (Change.BANK_CHANGE, "Change"),
                        (Change.BANK_REMOVE, "Remove"),
                        (Change.BANK_PRIMARY, "Make primary"),
                    )
                    if not (change == Change.BANK_PRIMARY and account.is_primary)
                ],
            }
            for account in customer.bank_accounts.order_by("-is_primary", "pk")
        ]
        return {
            "pending": pending,
            "mobile_url": f"{base}?change={Change.MOBILE}",
            "pan_url": f"{base}?change={Change.PAN}",
            "bank_add_url": f"{base}?change={Change.BANK_ADD}",
            "accounts": accounts,
        }

    @admin.display(description="mobile")
    def mobile_masked(self, obj):
        return obj.mobile_masked

    @admin.display(description="PAN")
    def pan_masked(self, obj):
        return obj.pan_masked

    def get_search_results(self, request, queryset, search_term):
        lookup = customer_key_lookup(search_term)
        if lookup is not None:
            return queryset.filter(**lookup), False
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


class DuesChangeList(ChangeList):
    """The loan list's changelist: it tells the bucket filter whether the list is sorted by
    DPD, and ties of a sort by one column go by id in the same direction (Django adds
    ``-pk`` whatever the direction), so that one index serves each column both ways: the
    DPD sort reads ``loan_dpd`` (``-dpd, -id``) forwards for the highest first, backwards
    for the lowest."""

    def get_queryset(self, request, exclude_parameters=None):
        ordering = self.get_ordering(request, self.root_queryset)
        first = ordering[0] if ordering else None
        setattr(request, SORTED_BY_DPD, first in ("dpd", "-dpd"))
        return super().get_queryset(request, exclude_parameters)

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
        """The total (its parts are on the loan's page: each amount formatted costs about
        40 us of babel, and the list stays within its budget)."""
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


@admin.register(CustomerBankAccount)
class CustomerBankAccountAdmin(ReadOnlyAdminMixin, ScopedModelAdmin):
    """Read-only: a customer's bank accounts are entered with the customer and change only
    through a change request on the customer's page (maker-checker)."""

    list_display = ["customer", "bank_name", "account_number_masked", "ifsc", "account_type"]
    list_select_related = ["customer"]
    list_filter = ["account_type"]
    autocomplete_fields = ["customer"]
    search_fields = ["=customer__customer_number", "=ifsc"]

    @admin.display(description="account number")
    def account_number_masked(self, obj):
        return obj.account_number_masked


@admin.register(Instalment)
class InstalmentAdmin(InstalmentStatusColumn, ReadOnlyAdminMixin, ScopedModelAdmin):
    list_display = ["loan", *Instalment.SCHEDULE_FIELDS, "status_shown"]
    list_select_related = ["loan"]
    list_filter = [InstalmentStatusFilter, ("due_date", admin.DateFieldListFilter)]
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
