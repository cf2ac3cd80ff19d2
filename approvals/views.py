"""The approvals workflow screens, on the admin's look: the inbox of what waits for the
user, a request's detail page with Approve / Return, and the user's own requests.

Staff only (others go to the admin login); a request outside the user's scope is a 404.
Decisions go through ``approvals.services.approval_decide``, which enforces maker-checker,
the checker's permission and "decided once"; its refusals are shown as messages.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from audit.admin import history_rows, shown_value
from audit.tracking import parse_entity
from core.decision import DecisionScreen

from . import selectors
from .models import ApprovalRequest
from .services import approval_decide, decision_refusal, handler_for, subject_of

logger = logging.getLogger(__name__)

VIEW_PERMISSION = "approvals.view_approvalrequest"
MY_REQUESTS_PAGE_SIZE = 50
HISTORY_SIZE = 50


@staff_member_required
def inbox(request):
    entries = selectors.inbox_entries(request.user)
    context = _context(
        request,
        "Approvals waiting for you",
        entries=entries,
        total=selectors.inbox_count(request.user),
    )
    return TemplateResponse(request, "approvals/inbox.html", context)


@staff_member_required
def my_requests(request):
    paginator = Paginator(
        selectors.approval_requests_made_by(user=request.user).order_by("-made_at", "-pk"),
        MY_REQUESTS_PAGE_SIZE,
    )
    page = paginator.get_page(request.GET.get("page"))
    returned = selectors.returned_to(request.user)
    context = _context(request, "My requests", page=page, returned=returned)
    return TemplateResponse(request, "approvals/mine.html", context)


class RequestDetail(DecisionScreen):
    template_name = "approvals/detail.html"

    def get_object(self, request, pk: int) -> ApprovalRequest:
        return _approval_for(request, pk)

    def detail_url(self, approval: ApprovalRequest) -> str:
        return reverse("approvals:detail", args=[approval.pk])

    def page(self, request, approval: ApprovalRequest) -> dict[str, Any]:
        pending = approval.status == ApprovalRequest.Status.PENDING
        refusal = _refusal(request.user, approval) if pending else None
        section = selectors.request_detail_section(approval=approval, user=request.user)
        # A section that shows the payload itself (masked as its app decides) replaces the
        # plain list of the payload's values.
        shown = not (section and section.get("shows_payload"))
        return {
            "title": str(approval),
            "approval": approval,
            "payload": _readable(approval.payload) if shown else [],
            "subject_url": _subject_url(approval.entity),
            "section_html": _section_html(request, section),
            "history": history_rows(request, approval, limit=HISTORY_SIZE),
            "decide_url": reverse("approvals:decide", args=[approval.pk]),
            "pending": pending,
            "may_decide": _may_decide(request.user, approval, refusal),
            "is_maker": approval.maker_id == request.user.pk,
            "refusal": refusal or "",
        }

    def decide(self, request, approval, *, approve: bool, remarks: str) -> ApprovalRequest:
        return approval_decide(
            request_id=approval.pk, approve=approve, actor=request.user, remarks=remarks
        )

    def decided_message(self, approval, decided, *, approve: bool) -> str:
        outcome = "Approved" if decided.status == ApprovalRequest.Status.APPROVED else "Returned"
        return format_html(
            '{}: <a href="{}">{}</a>.', outcome, self.detail_url(decided), str(decided)
        )


DETAIL = RequestDetail()


@staff_member_required
def request_detail(request, pk: int):
    return DETAIL.detail(request, pk)


@staff_member_required
@require_POST
def request_decide(request, pk: int):
    return DETAIL.post(request, pk)


# --- Helpers ----------------------------------------------------------------------------


def _approval_for(request, pk: int) -> ApprovalRequest:
    """The request if it is in the user's scope (else 404) and they may look at it: they
    made it, may view requests, or may check its kind (else 403)."""
    approval = get_object_or_404(
        selectors.approval_requests_visible(user=request.user).select_related(
            "branch", "maker", "checker"
        ),
        pk=pk,
    )
    user = request.user
    if approval.maker_id == user.pk or user.has_perm(VIEW_PERMISSION):
        return approval
    if _checker_permission(approval) and user.has_perm(_checker_permission(approval)):
        return approval
    raise PermissionDenied


def _checker_permission(approval: ApprovalRequest) -> str | None:
    try:
        return handler_for(approval.kind).checker_permission
    except KeyError:
        return None


def _refusal(user, approval: ApprovalRequest) -> str | None:
    return decision_refusal(
        subject=subject_of(approval), user=user, makers=[approval.maker_id], what="this request"
    )


def _may_decide(user, approval: ApprovalRequest, refusal: str | None) -> bool:
    permission = _checker_permission(approval)
    return (
        approval.status == ApprovalRequest.Status.PENDING
        and not refusal
        and permission is not None
        and user.has_perm(permission)
    )


def _section_html(request, section: dict[str, Any] | None) -> str:
    """What the subject's app shows about it (e.g. a reversal's allocation), if anything."""
    if not section:
        return ""
    context = dict(section)
    context.pop("shows_payload", None)
    return render_to_string(context.pop("template"), context, request=request)


def _readable(payload: dict | None) -> list[tuple[str, str]]:
    return [
        (str(key).replace("_", " ").capitalize(), shown_value(value))
        for key, value in sorted((payload or {}).items())
    ]


def _subject_url(entity: str) -> str | None:
    try:
        label, pk = parse_entity(entity)
        app_label, model_name = label.split(".", 1)
        return reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
    except (ValueError, NoReverseMatch):
        return None


def _context(request, title: str, **extra) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, "subtitle": None, **extra}
