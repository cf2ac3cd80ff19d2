"""The desk receipts list: scoped to the user's branches, searched by receipt number (or
loan number), read-only (a receipt is made by collecting a payment, never in the admin).
The number links to the receipt's own page; whether the payment is posted or reversed
comes from the ledger in the same query, never one query per row."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from core.money import inr
from payments.models import Posting

from .models import DeskReceipt
from .selectors import receipts_visible


@admin.register(DeskReceipt)
class DeskReceiptAdmin(ScopedModelAdmin):
    list_display = [
        "number_link",
        "business_date",
        "loan_and_customer",
        "amount_inr",
        "mode",
        "collector_name",
        "posting",
    ]
    list_filter = ["mode", ("branch", ScopedRelatedFilter), "business_date"]
    search_fields = ["receipt_number"]  # see get_search_results
    search_help_text = "Receipt number or loan number (exact)."
    date_hierarchy = "business_date"
    sortable_by = ["business_date"]
    list_per_page = 50

    def get_queryset(self, request):
        posted = Posting.objects.filter(txn_id=OuterRef("txn_id"))
        return receipts_visible(user=request.user).annotate(
            is_posted=Exists(posted), is_reversed=Exists(posted.filter(reversed_at__isnull=False))
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        if "/" in term:
            return queryset.filter(receipt_number=term), False
        return queryset.filter(loan__loan_number=term), False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="receipt", ordering="receipt_number")
    def number_link(self, obj: DeskReceipt) -> str:
        return format_html(
            '<a href="{}" class="nowrap">{}</a>',
            reverse("desk:receipt", args=[obj.pk]),
            obj.receipt_number,
        )

    @admin.display(description="loan")
    def loan_and_customer(self, obj: DeskReceipt) -> str:
        return format_html("{}<br>{}", obj.loan.loan_number, obj.loan.customer.name)

    @admin.display(description="amount")
    def amount_inr(self, obj: DeskReceipt) -> str:
        return inr(obj.amount)

    @admin.display(description="collector")
    def collector_name(self, obj: DeskReceipt) -> str:
        return obj.collector.get_full_name() or obj.collector.get_username()

    @admin.display(description="posting")
    def posting(self, obj: DeskReceipt) -> str:
        state = "Reversed" if obj.is_reversed else "Posted" if obj.is_posted else "Not yet posted"
        if not obj.reprint_count:
            return state
        reprints = "1 reprint" if obj.reprint_count == 1 else f"{obj.reprint_count} reprints"
        return format_html("{}<br>{}", state, reprints)
