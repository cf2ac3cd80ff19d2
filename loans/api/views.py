"""Read-only loan accounts for integrations (scope ``loans:read``) and staff
(``loans.view_loanaccount``), limited to the caller's branches."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from api import scopes
from api.permissions import HasScope
from loans.models import LoanAccount
from loans.selectors import loan_accounts_visible

from .serializers import LoanAccountSerializer


class LoanAccountFilter(filters.FilterSet):
    branch = filters.CharFilter(field_name="branch__code", help_text="Branch code.")
    status = filters.ChoiceFilter(choices=LoanAccount.Status.choices)
    product = filters.CharFilter(field_name="product__code", help_text="Loan product code.")

    class Meta:
        model = LoanAccount
        fields = ["branch", "status", "product"]


@extend_schema_view(
    list=extend_schema(summary="List loan accounts", tags=["loans"]),
    retrieve=extend_schema(
        summary="Get a loan account by its number",
        description="One loan account by its number (LN...); a loan of a branch the caller "
        "may not see is a 404, as if it did not exist.",
        tags=["loans"],
    ),
)
class LoanAccountViewSet(viewsets.ReadOnlyModelViewSet):
    """Loan accounts in the caller's branches, newest first."""

    serializer_class = LoanAccountSerializer
    permission_classes = [HasScope]
    required_scopes = {"GET": scopes.LOANS_READ}
    required_perms = {"GET": "loans.view_loanaccount"}
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = LoanAccountFilter
    lookup_field = "loan_number"

    def get_queryset(self):
        return loan_accounts_visible(user=self.request.user)
