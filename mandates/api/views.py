"""A banking partner posts its debit results: ``POST /api/v1/banking-partners/{code}/results``.

Only that partner's own API client may post (kind BANKING_PARTNER, its partner's code in
the URL, the scope ``partner:results``); any other client gets a 403. Session users need
``mandates.post_partner_results``, a permission no role has (superusers pass).

Each result is applied once: the same result again is a ``duplicate`` and changes nothing,
so a partner may resend a whole batch after a timeout. Another result for an execution
that has one is that item's error ``result_conflict``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from api import scopes
from api.exceptions import error_body
from api.models import ApiClient
from api.permissions import HasScope
from api.schema import error_response
from core.errors import NotFound
from loans.models import BankingPartner

from ..services import PartnerResult
from .results import result_apply
from .serializers import (
    PartnerResultSerializer,
    PartnerResultsOutcomeSerializer,
    PartnerResultsSerializer,
    ResultsBodySerializer,
)


class IsTheBankingPartner(BasePermission):
    """An API client must be the banking partner named in the URL."""

    message = "This API key does not speak for this banking partner."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not getattr(user, "is_api_client", False):
            return True  # staff sessions: HasScope's permission decides
        client = user.api_client
        return (
            client.kind == ApiClient.Kind.BANKING_PARTNER
            and client.banking_partner is not None
            and client.banking_partner.code == view.kwargs.get("code")
        )


class PartnerResultsView(APIView):
    permission_classes = [HasScope, IsTheBankingPartner]
    required_scopes = {"POST": scopes.PARTNER_RESULTS}
    required_perms = {"POST": "mandates.post_partner_results"}

    @extend_schema(
        summary="Post a banking partner's debit results",
        description="Up to 500 results of presented NACH debits. Each gets an outcome "
        "(`applied`, or `duplicate` when the same result was recorded before: nothing "
        "changes) or an error of its own (`result_conflict`, `execution_not_found`, "
        "`invalid_result`, `invalid`), in the order sent. A success becomes a NACH payment "
        "on the loan; a bounce raises the bounce charge and follows the return-code policy.",
        tags=["mandates"],
        request=PartnerResultsSerializer,
        responses={
            200: PartnerResultsOutcomeSerializer,
            400: error_response("The body is not {results: [...]} of 1 to 500 results"),
            401: error_response("No valid API key"),
            403: error_response("Not this partner's client, or the scope partner:results missing"),
            404: error_response("No such banking partner"),
        },
    )
    def post(self, request, code: str):
        partner = BankingPartner.objects.filter(code=code).first()
        if partner is None:
            raise NotFound(f"No banking partner {code}.", code="partner_not_found")
        body = ResultsBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(
            {"results": [self._one(partner, raw) for raw in body.validated_data["results"]]}
        )

    @staticmethod
    def _one(partner: BankingPartner, raw: dict) -> dict:
        execution_id = raw.get("execution_id")
        execution_id = execution_id if isinstance(execution_id, str) else None
        item = PartnerResultSerializer(data=raw)
        if not item.is_valid():
            fields = {name: [str(m) for m in msgs] for name, msgs in item.errors.items()}
            return {
                "execution_id": execution_id,
                **error_body("invalid", "The result is not valid.", fields),
            }
        result = PartnerResult(**item.validated_data)
        outcome = result_apply(partner_code=partner.code, result=result)
        if outcome.error is not None:
            error = outcome.error
            fields = {error.field: [error.message]} if error.field else None
            return {"execution_id": execution_id, **error_body(error.code, error.message, fields)}
        return {"execution_id": execution_id, "outcome": outcome.outcome}
