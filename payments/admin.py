"""Staff screens of payments.

- Postings (the ledger side, Postgres): a read-only, scoped list; the change page shows the
  split per instalment and leads to "Request reversal" (maker-checker, see approvals).
- The ledger maintenance switch: one row, toggled with a reason.
- Transactions (DynamoDB) at /admin/payments/transactionrecord/: by transaction id, loan
  number, or branch and business date. Needs ``payments.view_posting``.
- The posting queue (DynamoDB) at /admin/payments/postingqueueentry/: READY, LEASED and
  DEAD items of the user's branches. Viewing needs ``payments.view_posting``; sending a dead
  letter back to the queue needs ``payments.retry_posting`` (declared on the queue's proxy
  model: Finance and Admin have it through their ``payments.*`` / ``*.*`` patterns).

The two DynamoDB screens sit on proxy models of ``Posting`` (no table of their own), like
audit's Events. A DynamoDB outage is an error message on the page, never a traceback.
"""

from __future__ import annotations

import logging
import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import re_path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from pynamodb.exceptions import PynamoDBException

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from accounts.models import Branch
from approvals.models import ApprovalRequest
from approvals.services import handler_for
from audit.admin import AuditHistoryAdminMixin
from core.admin.approval_request import ApprovalRequestPage, ReasonForm
from core.admin.base import (
    BackOfficeModelAdmin,
    ReadOnlyAdminMixin,
    is_set_filter,
    money_column,
)
from core.admin.dynamo import DynamoAdmin, next_page_url
from core.errors import ApplicationError
from core.forms import AsciiModelChoiceField
from core.money import inr

from . import selectors
from .exceptions import LoanNotFound
from .models import LedgerSwitch, Posting
from .services import (
    MODES,
    ledger_switch_problems,
    ledger_switch_set,
    payment_reversal_request,
    queue_item_retry,
)

logger = logging.getLogger(__name__)

VIEW_PERMISSION = "payments.view_posting"
RETRY_PERMISSION = "payments.retry_posting"
STORE_DOWN = "The payments store (DynamoDB) is unavailable; try again shortly."
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


# --- Proxy models of the DynamoDB screens ----------------------------------------------
# They live here, not in models.py, because they exist only to give the admin an index
# entry, URLs and permissions; the app label makes them payments' models all the same.


class TransactionRecord(Posting):
    """The transaction browser (DynamoDB). Access: ``payments.view_posting``."""

    class Meta:
        proxy = True
        app_label = "payments"
        verbose_name = "transaction (DynamoDB)"
        verbose_name_plural = "transactions (DynamoDB)"
        default_permissions = ()

    def __str__(self) -> str:
        return self.txn_id


class PostingQueueEntry(Posting):
    """The posting queue (DynamoDB). View: ``payments.view_posting``; retry a dead letter:
    ``payments.retry_posting``."""

    class Meta:
        proxy = True
        app_label = "payments"
        verbose_name = "posting queue"
        verbose_name_plural = "posting queue"
        default_permissions = ()
        permissions = [("retry_posting", "Can send a dead posting back to the queue")]

    def __str__(self) -> str:
        return self.txn_id


# --- Postings --------------------------------------------------------------------------


class ModeFilter(admin.SimpleListFilter):
    """Fixed choices: no SELECT DISTINCT over the postings table."""

    title = "mode"
    parameter_name = "mode"

    def lookups(self, request, model_admin):
        return [(mode, mode) for mode in MODES]

    def queryset(self, request, queryset):
        return queryset.filter(mode=self.value()) if self.value() else queryset


ReversedFilter = is_set_filter("reversed_at", "reversed", "Reversed", "Not reversed")


class ReversalRequestForm(ReasonForm):
    reason_help = "Why the payment must be undone (e.g. the cheque bounced). A checker reads it."
    reason_missing = "Give a reason for the reversal."


class ReversalRequestPage(ApprovalRequestPage):
    """A posting's "Request reversal": Finance undoes it when they approve."""

    url_path = url_name = "reversal"
    form_class = ReversalRequestForm
    form_id = "reversal-form"
    submit_label = "Request reversal"

    @property
    def permission(self) -> str:
        return handler_for(ApprovalRequest.Kind.PAYMENT_REVERSAL).maker_permission

    def request_approval(self, request, obj, form):
        return payment_reversal_request(
            txn_id=obj.txn_id, reason=form.cleaned_data["reason"], actor=request.user
        )

    def what(self, form) -> str:
        return "Reversal"

    def title(self, obj) -> str:
        return f"Request the reversal of {obj.txn_id}"

    def crumb(self, obj) -> str:
        return "Request reversal"

    def confirm_message(self, obj) -> str:
        return (
            f"Ask for the reversal of the payment of {inr(obj.amount)} on loan "
            f"{obj.loan.loan_number} ({obj.txn_id})? When a checker approves it, the payment "
            "is undone and the dues it paid reopen."
        )

    def object_label(self, obj) -> str:
        return obj.txn_id

    def context(self, request, obj, form) -> dict:
        return {
            "intro": format_html(
                "The reversal undoes this payment on loan <strong>{}</strong>: it reopens "
                "exactly the dues below. It happens only when another person with the "
                'checker\'s permission approves it in the <a href="{}">approvals inbox</a>.',
                obj.loan.loan_number,
                reverse("approvals:inbox"),
            ),
            "detail_template": "admin/payments/posting/_allocation.html",
            "posting": obj,
            "allocations": selectors.posting_allocation_rows(obj),
        }


POSTING_FIELDS = [
    "txn_id",
    "loan",
    "branch",
    "business_date",
    "mode",
    "amount",
    "charges",
    "interest",
    "principal",
    "excess",
    "posted_at",
    "reversed_at",
    "reversed_by",
    "reversal_synced",
]


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdminMixin, ScopedModelAdmin):
    """Read-only: postings are made by the posting worker and undone only by an approved
    reversal."""

    list_display = [
        "txn_id",
        "loan",
        "branch",
        "business_date",
        "mode",
        money_column("amount"),
        money_column("charges"),
        money_column("interest"),
        money_column("principal"),
        money_column("excess"),
        "posted_at",
        "reversed_at",
    ]
    list_select_related = ["loan", "branch"]
    list_filter = [
        ("branch", ScopedRelatedFilter),
        ("business_date", admin.DateFieldListFilter),
        ModeFilter,
        ReversedFilter,
    ]
    search_fields = ["=txn_id"]  # see get_search_results: exact keys only
    search_help_text = "Transaction id or loan number (exact)."
    sortable_by = ["business_date", "posted_at"]
    fields = readonly_fields = POSTING_FIELDS

    @admin.display(description="Reversal in DynamoDB")
    def reversal_synced(self, obj: Posting) -> str:
        if obj.reversed_at is None:
            return "—"
        return "pending" if selectors.reversal_sync_pending(obj) else "done"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        if _ULID.match(term):
            return queryset.filter(txn_id=term), False
        return queryset.filter(loan__loan_number=term), False

    def get_urls(self):
        return [ReversalRequestPage(self).url(), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        posting = self.get_object(request, unquote(object_id))
        extra = {}
        if posting is not None:
            pending = selectors.reversal_requests_for(posting).filter(
                status=ApprovalRequest.Status.PENDING
            )
            extra = {
                "allocations": selectors.posting_allocation_rows(posting),
                "posting": posting,
                "pending_reversal": pending.first(),
                "can_request_reversal": self._may_request_reversal(request, posting),
                "transaction_url": transaction_browser_url(txn_id=posting.txn_id),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _may_request_reversal(self, request, posting: Posting) -> bool:
        page = ReversalRequestPage(self)
        return page.has_permission(request, posting) and posting.reversed_at is None


# --- The ledger maintenance switch -----------------------------------------------------


class LedgerSwitchForm(forms.ModelForm):
    class Meta:
        model = LedgerSwitch
        fields = ["maintenance", "reason"]

    def clean(self):
        cleaned = super().clean()
        cleaned["reason"] = (cleaned.get("reason") or "").strip()
        problems = ledger_switch_problems(
            maintenance=bool(cleaned.get("maintenance")),
            reason=cleaned["reason"],
            current=self.instance if self.instance.pk else None,  # not yet changed by the form
        )
        for field, message in problems.items():
            self.add_error(field, message)
        return cleaned


@admin.register(LedgerSwitch)
class LedgerSwitchAdmin(AuditHistoryAdminMixin, BackOfficeModelAdmin):
    """The one switch: the list goes straight to its page (creating the row if missing).
    While maintenance is on, payments are accepted but postings back off."""

    form = LedgerSwitchForm
    fields = ["maintenance", "reason", "changed_at"]
    readonly_fields = ["changed_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        ledger_switch_set(
            maintenance=form.cleaned_data["maintenance"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        switch, _ = LedgerSwitch.objects.get_or_create(pk=1)
        return HttpResponseRedirect(reverse("admin:payments_ledgerswitch_change", args=[switch.pk]))

    def response_change(self, request, obj):
        state = "ON: postings wait" if obj.maintenance else "off: postings resume"
        self.message_user(request, f"Ledger maintenance is {state}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:payments_ledgerswitch_change", args=[obj.pk]))


# --- Transactions (DynamoDB) ------------------------------------------------------------


class TransactionSearchForm(forms.Form):
    txn_id = forms.CharField(label="Transaction id", required=False, max_length=40)
    loan_number = forms.CharField(required=False, max_length=20)
    branch = AsciiModelChoiceField(queryset=Branch.objects.none(), required=False)
    business_date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="with a branch"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["branch"].queryset = selectors.branches_visible(user=user)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        cleaned["txn_id"] = cleaned.get("txn_id", "").strip().upper()
        cleaned["loan_number"] = cleaned.get("loan_number", "").strip().upper()
        branch, day = cleaned.get("branch"), cleaned.get("business_date")
        if cleaned["txn_id"] or cleaned["loan_number"]:
            return cleaned
        if branch and not day:
            self.add_error("business_date", "Choose the business date too.")
        elif day and not branch:
            self.add_error("branch", "Choose the branch too.")
        elif not branch:
            raise forms.ValidationError(
                "Enter a transaction id, a loan number, or a branch and a business date."
            )
        return cleaned


SEARCH_FIELDS = ("txn_id", "loan_number", "branch", "business_date")


@admin.register(TransactionRecord)
class TransactionRecordAdmin(DynamoAdmin):
    view_permission = VIEW_PERMISSION

    def changelist_view(self, request, extra_context=None):
        self.require_view(request)
        user = request.user
        bound = any(request.GET.get(name) for name in SEARCH_FIELDS)
        form = TransactionSearchForm(request.GET if bound else None, user=user)
        rows, next_url = None, None
        if form.is_bound and form.is_valid():
            rows, next_cursor = self._search(request, form)
            next_url = next_page_url(request.GET, next_cursor)
        context = self.page_context(
            request,
            "Transactions (DynamoDB)",
            form=form,
            rows=rows_with_links(rows, user) if rows else rows,
            next_url=next_url,
            first_url=_first_url(request.GET) if request.GET.get("cursor") else None,
            **(extra_context or {}),
        )
        return TemplateResponse(request, "admin/payments/transactionrecord/browser.html", context)

    def _search(self, request, form) -> tuple[list | None, str | None]:
        user, data = request.user, form.cleaned_data
        cursor = request.GET.get("cursor") or None
        try:
            if data["txn_id"]:
                return [selectors.transaction_for_user(txn_id=data["txn_id"], user=user)], None
            if data["loan_number"]:
                page = selectors.transactions_for_loan(
                    loan=data["loan_number"], user=user, limit=self.page_size, cursor=cursor
                )
            else:
                page = selectors.transactions_for_branch_day(
                    branch_id=data["branch"].pk,
                    business_date=data["business_date"],
                    user=user,
                    limit=self.page_size,
                    cursor=cursor,
                )
        except LoanNotFound as exc:
            form.add_error("loan_number", str(exc))
            return None, None
        except ApplicationError as exc:
            messages.error(request, str(exc))
            return None, None
        except PynamoDBException:
            logger.warning("transaction browser: DynamoDB failed", exc_info=True)
            messages.error(request, STORE_DOWN)
            return None, None
        return page.rows, page.next_cursor


# --- The posting queue (DynamoDB) ------------------------------------------------------


@admin.register(PostingQueueEntry)
class PostingQueueAdmin(DynamoAdmin):
    view_permission = VIEW_PERMISSION
    default_status = "READY"

    def can_retry(self, request) -> bool:
        return request.user.has_perm(RETRY_PERMISSION)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            *super().get_urls(),
            re_path(
                r"^(?P<item_id>[0-9A-Za-z]{1,40})/retry/$",
                self.admin_site.admin_view(require_POST(self.retry_view)),
                name="{}_{}_retry".format(*info),
            ),
        ]

    def changelist_view(self, request, extra_context=None):
        self.require_view(request)
        status = request.GET.get("status", self.default_status)
        if status not in selectors.QUEUE_STATUSES:
            status = self.default_status
        cursor = request.GET.get("cursor") or None
        rows, next_cursor = [], None
        try:
            page = selectors.queue_items(
                status=status, user=request.user, limit=self.page_size, cursor=cursor
            )
            rows, next_cursor = page.rows, page.next_cursor
        except ApplicationError as exc:
            messages.error(request, str(exc))
        except PynamoDBException:
            logger.warning("posting queue: DynamoDB failed", exc_info=True)
            messages.error(request, STORE_DOWN)
        context = self.page_context(
            request,
            "Posting queue",
            status=status,
            statuses=selectors.QUEUE_STATUSES,
            rows=rows_with_links(rows, request.user),
            cursor=cursor,
            next_url=next_page_url(QueryDict(f"status={status}"), next_cursor),
            can_retry=self.can_retry(request) and status == "DEAD",
            **(extra_context or {}),
        )
        return TemplateResponse(request, "admin/payments/postingqueueentry/queue.html", context)

    def retry_view(self, request, item_id: str):
        if not self.can_retry(request):
            raise PermissionDenied
        try:
            item = selectors.queue_item_for_user(item_id=item_id, user=request.user)
            if item is None:
                messages.error(request, f"No queue item {item_id} that you may see.")
            else:
                queue_item_retry(item_id=item["item_id"], actor=request.user)
                messages.success(
                    request, f"{item['txn_id']} is back in the queue; it will be posted shortly."
                )
        except ApplicationError as exc:
            messages.error(request, f"Not retried: {exc}")
        except PynamoDBException:
            logger.warning("posting queue retry: DynamoDB failed", exc_info=True)
            messages.error(request, STORE_DOWN)
        url = reverse("admin:payments_postingqueueentry_changelist")
        return HttpResponseRedirect(f"{url}?status=DEAD")


# --- Presentation ----------------------------------------------------------------------


def transaction_browser_url(**params) -> str:
    query = QueryDict(mutable=True)
    query.update(params)
    return f"{reverse('admin:payments_transactionrecord_changelist')}?{query.urlencode()}"


def _first_url(params: QueryDict) -> str:
    params = params.copy()
    params.pop("cursor", None)
    return f"?{params.urlencode()}"


def rows_with_links(rows: list[dict], user) -> list[dict]:
    """Rows with their branch's name and links to the posting and the loan (two queries)."""
    branches = Branch.objects.in_bulk({row["branch_id"] for row in rows})
    postings = dict(
        selectors.postings_visible(user=user)
        .filter(txn_id__in=[row["txn_id"] for row in rows])
        .values_list("txn_id", "pk")
    )
    return [
        {
            **row,
            "branch": branches.get(row["branch_id"]),
            "posting_url": (
                reverse("admin:payments_posting_change", args=[postings[row["txn_id"]]])
                if row["txn_id"] in postings
                else None
            ),
            "browser_url": transaction_browser_url(txn_id=row["txn_id"]),
            "loan_url": transaction_browser_url(loan_number=row["loan_account"]),
        }
        for row in rows
    ]


from .bulk_admin import BulkUploadAdmin  # noqa: E402,F401  the bulk upload screens
