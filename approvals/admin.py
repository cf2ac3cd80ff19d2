"""Approvals in the admin: the header's "Approvals (n)" link (registered with the site in
``ApprovalsConfig.ready()``) and the read-only history of the requests."""

from __future__ import annotations

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from core.admin.base import ReadOnlyAdminMixin

from .models import ApprovalRequest
from .selectors import inbox_count_for_header


def inbox_header_link(request) -> str:
    """``Approvals (3) /`` for staff; nothing where the inbox is not routed (test URLconfs).
    The count is kept for a few seconds per user (``inbox_count_for_header``)."""
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return ""
    try:
        url = reverse("approvals:inbox")
    except NoReverseMatch:
        return ""
    count = inbox_count_for_header(user)
    label = f"Approvals ({count})" if count else "Approvals"
    return format_html('<a href="{}" id="approvals-link">{}</a> / ', url, label)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdminMixin, ScopedModelAdmin):
    """The history of maker-checker requests, read-only: deciding happens in the approvals
    inbox (/approvals/), which the link on each row opens."""

    view_on_site = False  # the "workflow page" field links there already

    list_display = [
        "made_at",
        "kind",
        "entity_repr",
        "branch",
        "status",
        "maker",
        "checker",
        "decided_at",
        "workflow_link",
    ]
    list_select_related = ["branch", "maker", "checker"]
    list_filter = ["kind", "status", ("branch", ScopedRelatedFilter)]
    search_fields = ["=entity"]
    search_help_text = "The subject, e.g. payments.posting#12 (exact)."
    sortable_by = ["made_at", "decided_at"]
    fields = readonly_fields = [
        "kind",
        "entity",
        "entity_repr",
        "branch",
        "status",
        "reason",
        "payload",
        "maker",
        "made_at",
        "checker",
        "decided_at",
        "remarks",
        "workflow_link",
    ]

    @admin.display(description="workflow page")
    def workflow_link(self, obj):
        try:
            url = reverse("approvals:detail", args=[obj.pk])
        except NoReverseMatch:  # a URLconf without the workflow screens
            return "—"
        return format_html('<a href="{}">open</a>', url)
