"""The approver's review page of a mandate, on the admin's look: the loan, the payer and
the bank account (masked), the terms, the instalments it will collect, the history, and
Approve / Return.

Staff only (others go to the admin login); a mandate outside the user's scope is a 404.
Decisions go through ``mandate_approve`` / ``mandate_return``, which enforce maker-checker,
the checker's permission and "decided once"; their refusals are shown as messages.
"""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from approvals.forms import DecisionForm
from approvals.services import decision_refusal, subject_of
from audit.admin import history_rows
from core.errors import ApplicationError

from . import selectors
from .models import Mandate
from .services import mandate_approve, mandate_return

logger = logging.getLogger(__name__)

VIEW_PERMISSION = "mandates.view_mandate"
HISTORY_SIZE = 50


@staff_member_required
def mandate_review(request, pk: int):
    mandate = _mandate_for(request, pk)
    return _render(request, mandate, DecisionForm())


@staff_member_required
@require_POST
def mandate_decide(request, pk: int):
    mandate = _mandate_for(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _render(request, mandate, form)
    remarks = form.cleaned_data["remarks"]
    try:
        if form.approve:
            decided = mandate_approve(mandate_id=mandate.pk, actor=request.user, remarks=remarks)
        else:
            decided = mandate_return(mandate_id=mandate.pk, actor=request.user, remarks=remarks)
    except ApplicationError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(selectors.mandate_review_url(mandate))
    outcome = "Approved" if decided.status == Mandate.Status.APPROVED else "Returned to the maker"
    messages.success(
        request,
        format_html(
            '{}: <a href="{}">mandate {} on {}</a>.',
            outcome,
            selectors.mandate_review_url(decided),
            decided.pk,
            mandate.loan.loan_number,
        ),
    )
    return HttpResponseRedirect(reverse("approvals:inbox"))


def _mandate_for(request, pk: int) -> Mandate:
    mandate = selectors.mandate_for_review(user=request.user, mandate_id=pk)
    if mandate is None:
        raise Http404("No such mandate.")
    user = request.user
    if not (user.has_perm(VIEW_PERMISSION) or user.has_perm(selectors.APPROVE_PERMISSION)):
        raise PermissionDenied
    return mandate


def _render(request, mandate: Mandate, form: DecisionForm):
    user = request.user
    upcoming = selectors.mandate_upcoming_instalments(mandate=mandate)
    is_maker = mandate.maker_id is not None and mandate.maker_id == user.pk
    pending = mandate.status == Mandate.Status.PENDING_APPROVAL
    refusal = pending and decision_refusal(
        subject=subject_of(mandate),
        user=user,
        makers=[mandate.maker_id, mandate.created_by_id],
        what="this mandate",
    )
    context = {
        **admin.site.each_context(request),
        "title": f"Mandate {mandate.pk} on {mandate.loan.loan_number}",
        "subtitle": None,
        "mandate": mandate,
        "loan": mandate.loan,
        "schedule": [
            {
                "instalment": inst,
                "unpaid": inst.total_due - inst.total_paid,
                "debit": min(inst.total_due - inst.total_paid, mandate.max_amount),
                "over_limit": inst.total_due - inst.total_paid > mandate.max_amount,
            }
            for inst in upcoming
        ],
        "transitions": selectors.mandate_transitions(mandate=mandate),
        "history": history_rows(request, mandate, limit=HISTORY_SIZE),
        "form": form,
        "pending": pending,
        "may_decide": pending and user.has_perm(selectors.APPROVE_PERMISSION) and not refusal,
        "is_maker": is_maker,
        "refusal": refusal or "",
        "change_url": reverse("admin:mandates_mandate_change", args=[mandate.pk]),
    }
    return TemplateResponse(request, "mandates/review.html", context)
