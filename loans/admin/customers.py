"""Customers and their bank accounts, with the page that requests a change of the mobile,
the PAN or the bank accounts (maker-checker); the customer search by its exact keys."""

import re

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.urls import reverse

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from accounts.models import mobile_digits
from core.admin.approval_request import ApprovalRequestPage
from core.admin.base import ReadOnlyAdminMixin

from .. import services
from ..forms import CustomerChangeForm
from ..models import Customer, CustomerBankAccount
from ..panels import customer_panels_html
from ..selectors import customer_change_pending
from ..services import Change

CHANGE_REQUEST_PERMISSION = "loans.request_customer_change"
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


class MaskedAccountNumberMixin:
    """Where a bank account is only shown (read-only), its number is masked to the last four
    digits, as in lists, the customer's summary and the audit trail."""

    @admin.display(description="account number")
    def account_number_masked(self, obj):
        return obj.account_number_masked if obj is not None and obj.pk else ""

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if self.has_change_permission(request, obj):
            return fields
        shown = ("account_number_masked" if name == "account_number" else name for name in fields)
        return list(dict.fromkeys(shown))

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if self.has_change_permission(request, obj):
            return fields
        return [*fields, "account_number_masked"]


class CustomerBankAccountInline(MaskedAccountNumberMixin, admin.TabularInline):
    """A new customer's bank accounts are entered with the customer; afterwards they change
    only through a change request (maker-checker): read-only here, the number masked."""

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
                    f"{account.bank_name} {account.account_number_masked} ({account.ifsc}), "
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


@admin.register(CustomerBankAccount)
class CustomerBankAccountAdmin(ReadOnlyAdminMixin, MaskedAccountNumberMixin, ScopedModelAdmin):
    """Read-only (the number masked): a customer's bank accounts are entered with the customer
    and change only through a change request on the customer's page (maker-checker)."""

    list_display = ["customer", "bank_name", "account_number_masked", "ifsc", "account_type"]
    list_select_related = ["customer"]
    list_filter = ["account_type"]
    autocomplete_fields = ["customer"]
    search_fields = ["=customer__customer_number", "=ifsc"]
