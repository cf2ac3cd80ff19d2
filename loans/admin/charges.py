"""Charges (bounce charges): read-only, waived only through maker-checker."""

from django.contrib import admin
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from core.admin.approval_request import ApprovalRequestPage, ReasonForm
from core.admin.base import ReadOnlyAdminMixin, is_set_filter
from core.money import inr

from .. import services
from ..models import LoanCharge

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
