from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter

from .models import ApprovalRequest


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ScopedModelAdmin):
    """The history of maker-checker requests, read-only: deciding happens in the approvals
    inbox (/approvals/), which the link on each row opens."""

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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
