from collections.abc import Callable

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from core.errors import ApplicationError

from .models import ApprovalRequest


def approval_request_submit(
    modeladmin: admin.ModelAdmin,
    request,
    *,
    form,
    what: str,
    make: Callable[[str], ApprovalRequest],
    back_url: str,
) -> HttpResponseRedirect | None:
    """The POST of an admin page that asks for a maker-checker approval ("Request a
    waiver", "Request the reversal"): ``make(reason)`` creates the request through the
    app's service. Returns the redirect back to the object, or None while the form is
    unbound or invalid (the caller renders it again)."""
    if not (form.is_bound and form.is_valid()):
        return None
    try:
        approval = make(form.cleaned_data["reason"])
    except ApplicationError as exc:
        modeladmin.message_user(request, f"{what} not requested: {exc}", messages.ERROR)
    else:
        modeladmin.message_user(
            request,
            format_html(
                '{} requested; it waits for a checker (<a href="{}">#{}</a>).',
                what,
                reverse("approvals:detail", args=[approval.pk]),
                approval.pk,
            ),
            messages.SUCCESS,
        )
    return HttpResponseRedirect(back_url)


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
