"""Reads of mandates for the admin, the review page, the approvals inbox and the API.

Everything a user sees goes through :func:`accounts.scoping.scope_queryset`. Importing
this module registers the "mandates" source of the approvals inbox (mandates waiting for
the user's approval) and the detail section of suspension and cancellation requests; it
is imported by ``mandates.admin`` and ``mandates.urls``, so at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from accounts.scoping import scope_queryset
from approvals.models import ApprovalRequest
from approvals.selectors import (
    SOURCE_LIMIT,
    InboxEntry,
    ReturnedEntry,
    without_undecidable,
)
from core.models import StatusChange
from core.money import from_paise
from core.outbox import outbox_pending_exists
from core.templatetags.formats import inr, person
from loans.models import Instalment

from .ddb_models import MandateExecutionItem
from .models import RESULT_TOPIC, ExecutionResult, Mandate, ScheduledPresentation

logger = logging.getLogger(__name__)

APPROVE_PERMISSION = "mandates.approve_mandate"
S = Mandate.Status


def mandates_visible(*, user) -> QuerySet[Mandate]:
    return scope_queryset(Mandate.objects.all(), user)


def mandate_for_review(*, user, mandate_id: int) -> Mandate | None:
    """A mandate with what its review page shows, or None when the user may not see it."""
    return (
        mandates_visible(user=user)
        .select_related(
            "loan__customer",
            "loan__branch",
            "payer",
            "banking_partner",
            "created_by",
            "maker",
            "checker",
        )
        .filter(pk=mandate_id)
        .first()
    )


def mandate_upcoming_instalments(*, mandate: Mandate, today: date | None = None, limit: int = 60):
    """The loan's unpaid instalments due within the mandate's dates, from today on: what
    the mandate will collect once active."""
    today = today or timezone.localdate()
    return list(
        Instalment.objects.filter(
            loan_id=mandate.loan_id,
            due_date__gte=max(today, mandate.start_date),
            due_date__lte=mandate.end_date,
        )
        .exclude(status=Instalment.Status.PAID)
        .order_by("due_date")[:limit]
    )


def mandate_transitions(*, mandate: Mandate) -> QuerySet[StatusChange]:
    return mandate.transitions.select_related("actor")


def mandate_pending_stop_request(*, mandate: Mandate) -> ApprovalRequest | None:
    return (
        ApprovalRequest.objects.filter(
            entity=f"mandates.mandate#{mandate.pk}",
            kind__in=[
                ApprovalRequest.Kind.MANDATE_SUSPENSION,
                ApprovalRequest.Kind.MANDATE_CANCELLATION,
            ],
            status=ApprovalRequest.Status.PENDING,
        )
        .select_related("maker")
        .first()
    )


# --- Executions (DynamoDB) --------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionRow:
    execution_id: str
    due_date: str
    attempt: int
    amount: Any
    status: str
    return_code: str
    return_reason: str
    batch_reference: str
    presented_at: str
    result_at: str
    txn_id: str


NOT_PRESENTED = "NOT PRESENTED"


def presented_attempts(presentation_ids) -> dict[int, int]:
    """``{presentation id: attempts}``: how many times each was handed to its partner.
    The presentation rows are the truth of what was presented: an execution item whose
    attempt is above its presentation's was written by a run that died before handing it
    over (its resumed run presents it under the same id), or is being handed over now."""
    return dict(
        ScheduledPresentation.objects.filter(pk__in=set(presentation_ids)).values_list(
            "pk", "attempts"
        )
    )


def execution_presented(item: MandateExecutionItem, attempts: dict[int, int]) -> bool:
    return attempts.get(int(item.presentation_id), 0) >= int(item.attempt)


def mandate_executions(*, mandate: Mandate, limit: int = 100) -> list[ExecutionRow]:
    """The mandate's presentations and their results, newest due date first: one Query
    on the ``by_mandate`` index, and the presentations' attempts from Postgres (an
    execution not handed over reads NOT PRESENTED, whatever its item says). Raises
    PynamoDBException when DynamoDB is down."""
    items = list(
        MandateExecutionItem.by_mandate.query(
            str(mandate.pk), scan_index_forward=False, limit=limit
        )
    )
    attempts = presented_attempts(item.presentation_id for item in items)
    return [
        ExecutionRow(
            execution_id=item.execution_id,
            due_date=item.due_date,
            attempt=int(item.attempt),
            amount=from_paise(int(item.amount_paise)),
            status=item.status if execution_presented(item, attempts) else NOT_PRESENTED,
            return_code=item.return_code or "",
            return_reason=item.return_reason or "",
            batch_reference=item.batch_reference or "",
            presented_at=item.presented_at or "",
            result_at=item.result_at or "",
            txn_id=item.txn_id or "",
        )
        for item in items
    ]


def executions_by_id(execution_ids: list[str]) -> dict[str, MandateExecutionItem]:
    """The executions of these ids that were presented (BatchGetItem, consistent reads;
    then their presentations' attempts from Postgres)."""
    found: dict[str, MandateExecutionItem] = {}
    unique = list(dict.fromkeys(execution_ids))
    for start in range(0, len(unique), 100):
        for item in MandateExecutionItem.batch_get(
            unique[start : start + 100], consistent_read=True
        ):
            found[item.execution_id] = item
    attempts = presented_attempts(item.presentation_id for item in found.values())
    return {eid: item for eid, item in found.items() if execution_presented(item, attempts)}


def recorded_results(execution_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{execution_id: (status, return_code)}`` of results already applied."""
    return {
        execution_id: (status, return_code)
        for execution_id, status, return_code in ExecutionResult.objects.filter(
            execution_id__in=execution_ids
        ).values_list("execution_id", "status", "return_code")
    }


def results_with_sync_state(results: QuerySet[ExecutionResult]) -> QuerySet[ExecutionResult]:
    """Results annotated with ``sync_pending``: their DynamoDB side is still waiting in the
    outbox (one subquery, no query per row)."""
    return results.annotate(
        sync_pending=outbox_pending_exists(RESULT_TOPIC, OuterRef("execution_id"))
    )


# --- The approvals inbox ------------------------------------------------------------------


def mandates_waiting_for(*, user) -> QuerySet[Mandate]:
    """Mandates pending approval in the user's scope that they may approve: not those they
    created or submitted, nor those they changed since the last decision."""
    if not user.has_perm(APPROVE_PERMISSION):
        return Mandate.objects.none()
    pending = (
        mandates_visible(user=user)
        .filter(status=S.PENDING_APPROVAL)
        .exclude(maker=user)
        .exclude(created_by=user)
    )
    return without_undecidable(pending, user)


def mandate_review_url(mandate: Mandate) -> str:
    return reverse("mandates:review", args=[mandate.pk])


def mandate_inbox_entries(user) -> list[InboxEntry]:
    rows = (
        mandates_waiting_for(user=user)
        .select_related("loan__branch", "loan__customer", "maker")
        .order_by("status_changed_at", "pk")[:SOURCE_LIMIT]
    )
    return [
        InboxEntry(
            kind_label="Mandate registration",
            subject=f"{mandate.get_mandate_type_display()} mandate {mandate.pk} on "
            f"{mandate.loan.loan_number} ({mandate.loan.customer.name}), "
            f"up to {inr(mandate.max_amount)}",
            branch=str(mandate.loan.branch),
            maker=person(mandate.maker) if mandate.maker else "—",
            submitted_at=mandate.status_changed_at,
            url=mandate_review_url(mandate),
            source="mandates",
        )
        for mandate in rows
    ]


def mandates_returned_to(user) -> list[ReturnedEntry]:
    """Mandates the user submitted that a checker returned to draft (My requests), with the
    checker's remarks; the user fixes them on the mandate's admin page."""
    returns = StatusChange.objects.filter(
        content_type=ContentType.objects.get_for_model(Mandate),
        object_id=OuterRef("pk"),
        from_status=S.PENDING_APPROVAL,
        to_status=S.DRAFT,
    ).order_by("-at", "-id")
    rows = (
        mandates_visible(user=user)
        .filter(status=S.DRAFT, maker=user, checker__isnull=False)
        .select_related("loan__branch", "loan__customer", "checker")
        .annotate(return_remarks=Subquery(returns.values("remarks")[:1]))
        .order_by("-status_changed_at", "-pk")[:SOURCE_LIMIT]
    )
    return [
        ReturnedEntry(
            kind_label="Mandate registration",
            subject=f"{mandate.get_mandate_type_display()} mandate on "
            f"{mandate.loan.loan_number} ({mandate.loan.customer.name})",
            branch=mandate.loan.branch.name,
            returned_by=person(mandate.checker),
            returned_at=mandate.status_changed_at,
            remarks=mandate.return_remarks or "",
            url=reverse("admin:mandates_mandate_change", args=[mandate.pk]),
        )
        for mandate in rows
    ]


def mandate_inbox_count(user) -> int:
    if not user.has_perm(APPROVE_PERMISSION):
        return 0  # no query for those who cannot approve
    return mandates_waiting_for(user=user).count()


# --- Suspension and cancellation requests on the approvals detail page --------------------


def stop_request_detail(*, approval: ApprovalRequest, user) -> dict[str, Any] | None:
    mandate_id = (approval.payload or {}).get("mandate_id")
    mandate = mandate_for_review(user=user, mandate_id=mandate_id) if mandate_id else None
    if mandate is None:
        return None
    return {
        "template": "mandates/_stop_request_detail.html",
        "mandate": mandate,
        "upcoming": mandate.presentations.filter(
            status__in=["SCHEDULED", "RETRY_SCHEDULED"]
        ).count(),
    }


# --- The customer's page (a section registered with loans.panels) -------------------------

CUSTOMER_MANDATES_SHOWN = 20


def customer_mandates(*, customer, user) -> QuerySet[Mandate]:
    """The mandates of the customer's loans and those the customer pays (as a co-borrower)."""
    return (
        mandates_visible(user=user)
        .filter(Q(payer=customer) | Q(loan__customer=customer))
        .select_related("loan", "payer")
        .order_by("-id")
    )


def customer_mandates_panel(customer, user) -> dict[str, Any] | None:
    if not user.has_perm("mandates.view_mandate"):
        return None
    mandates = list(customer_mandates(customer=customer, user=user)[:CUSTOMER_MANDATES_SHOWN])
    return {
        "template": "admin/mandates/_customer_mandates.html",
        "rows": [
            {"mandate": m, "url": reverse("admin:mandates_mandate_change", args=[m.pk])}
            for m in mandates
        ],
        "more": len(mandates) == CUSTOMER_MANDATES_SHOWN,
    }
