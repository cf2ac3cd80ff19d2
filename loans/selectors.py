"""Reads of loans, shared by the admin and the API: always through the one scoping function."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.scoping import scope_queryset
from loans.models import LoanAccount


def loan_accounts_visible(*, user) -> QuerySet[LoanAccount]:
    """The loan accounts ``user`` (a staff user or an API principal) may see, newest first,
    with what the API shows of their customer, branch and product in the same query."""
    queryset = LoanAccount.objects.select_related("customer", "branch", "product").order_by("-id")
    return scope_queryset(queryset, user)
