"""Reads of loans, shared by the admin and the API: always through the one scoping function."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.scoping import scope_queryset
from approvals.models import ApprovalRequest
from audit.masking import mask_value
from loans.models import CoBorrower, Customer, LoanAccount

CUSTOMER_CHANGE = "CUSTOMER_CHANGE"


def loan_accounts_visible(*, user) -> QuerySet[LoanAccount]:
    """The loan accounts ``user`` (a staff user or an API principal) may see, newest first,
    with what the API shows of their customer, branch and product in the same query."""
    queryset = LoanAccount.objects.select_related("customer", "branch", "product").order_by("-id")
    return scope_queryset(queryset, user)


def customer_loans(*, customer: Customer, user) -> QuerySet[LoanAccount]:
    """The loans ``customer`` borrows, as the customer's page lists them (one query)."""
    queryset = LoanAccount.objects.filter(customer=customer).select_related("product", "branch")
    return scope_queryset(queryset, user).order_by("-disbursed_on", "-id")


def customer_co_borrowings(*, customer: Customer, user) -> QuerySet[CoBorrower]:
    """The loans ``customer`` co-borrows or guarantees, with each loan's borrower and
    product (one query)."""
    queryset = CoBorrower.objects.filter(customer=customer).select_related(
        "loan__customer", "loan__product", "loan__branch"
    )
    return scope_queryset(queryset, user).order_by("-loan__disbursed_on", "-loan_id")


def customer_change_pending(*, customer: Customer) -> ApprovalRequest | None:
    """The customer's change request (mobile, PAN, bank account) waiting for a checker."""
    return ApprovalRequest.objects.filter(
        kind=CUSTOMER_CHANGE,
        entity=f"loans.customer#{customer.pk}",
        status=ApprovalRequest.Status.PENDING,
    ).first()


CHANGE_CHECKER_PERMISSION = "loans.approve_customer_change"
_FIELD_LABELS = {
    "mobile": "Mobile",
    "pan": "PAN",
    "holder_name": "Account holder",
    "bank_name": "Bank",
    "account_number": "Account number",
    "ifsc": "IFSC",
    "account_type": "Account type",
    "is_primary": "Primary",
}
_MASKED = {"mobile", "pan", "account_number"}


def customer_change_detail(*, approval: ApprovalRequest, user) -> dict[str, Any] | None:
    """The approvals page of a customer change: what it replaces and the new values.

    Shown in full to its maker (who typed them) and to those who may approve such changes
    (a checker compares them with the customer's documents: a masked PAN cannot be
    checked); masked, as in lists and the audit trail, to everyone else who may read the
    request (auditors, finance)."""
    customer = (
        scope_queryset(Customer.objects.all(), user)
        .filter(pk=(approval.payload or {}).get("customer_id"))
        .first()
    )
    if customer is None:
        return None
    full = approval.maker_id == user.pk or user.has_perm(CHANGE_CHECKER_PERMISSION)
    old, new = approval.payload.get("old") or {}, approval.payload.get("new") or {}

    def shown(name: str, value: Any) -> str:
        if value in (None, ""):
            return "—"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value) if full or name not in _MASKED else mask_value(value)

    rows = [
        (_FIELD_LABELS.get(name, name), shown(name, old.get(name)), shown(name, new.get(name)))
        for name in [*old, *(n for n in new if n not in old)]
    ]
    return {
        "template": "admin/loans/customer/_change_detail.html",
        "shows_payload": True,
        "customer": customer,
        "change_label": approval.entity_repr,
        "rows": rows,
        "masked": not full,
        "removal": approval.payload.get("change") == "bank_remove",
    }
