"""Payment ingestion and reads for integrations and staff.

Writes need an ``Idempotency-Key`` header: the same key with the same body replays the
first response (with ``Idempotent-Replayed: true``); with another body it is a 409
``idempotency_key_reused``; while the first request is still being processed, a 409
``request_in_flight`` with ``Retry-After``. A receipt number already recorded in the branch
is a 409 ``duplicate_receipt``, an external reference the client already sent a 409
``duplicate_external_reference``, each with ``details.txn_id`` of the recorded payment;
nothing is stored and the key stays free (sent again, it gets the same 409; with a
corrected body, it is accepted).
"""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api import scopes
from api.exceptions import error_body
from api.pagination import DynamoCursorPagination
from api.permissions import HasScope
from api.schema import error_response
from ops.errors import ApplicationError
from payments.api import selectors
from payments.services import payment_ingest

from .serializers import (
    BatchInSerializer,
    BatchItemSerializer,
    BatchOutSerializer,
    PaymentBatchSerializer,
    PaymentInSerializer,
    TransactionFilterSerializer,
    TransactionListSerializer,
    TransactionSerializer,
)

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{8,100}$")
KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    pattern=IDEMPOTENCY_KEY.pattern,
    description="8 to 100 printable characters, unique per payment (a UUID is ideal).",
)
WRITE_ERRORS = {
    400: error_response("Invalid request or missing Idempotency-Key"),
    401: error_response("No valid API key or session"),
    403: error_response("Missing scope or permission"),
    404: error_response("No such loan account in the caller's branches"),
    409: error_response(
        "Idempotency-Key reused with another body (idempotency_key_reused) or still in flight "
        "(request_in_flight); or the receipt number is already recorded in the branch "
        "(duplicate_receipt), or the external reference by this client "
        "(duplicate_external_reference): `details.txn_id` names that payment"
    ),
    422: error_response("The payment cannot be accepted (e.g. the loan is closed)"),
    503: error_response("The payments store is unavailable; retry with the same key"),
}

READ_UNAVAILABLE = error_response("The payments store is unavailable; retry shortly")


def idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not IDEMPOTENCY_KEY.match(key):
        raise ApplicationError(
            "Send an Idempotency-Key header of 8 to 100 printable characters.",
            code="idempotency_key_required",
            field="Idempotency-Key",
        )
    return key


def source_of(user) -> str:
    """Idempotency keys are per source: two clients may use the same key."""
    if getattr(user, "is_api_client", False):
        return f"api:{user.api_client.pk}"
    return f"user:{user.pk}"


class TransactionsView(APIView):
    permission_classes = [HasScope]
    required_scopes = {"GET": scopes.TRANSACTIONS_READ, "POST": scopes.TRANSACTIONS_WRITE}
    required_perms = {"GET": "payments.view_posting", "POST": "payments.add_posting"}
    pagination = DynamoCursorPagination()

    @extend_schema(
        summary="Record one payment",
        operation_id="transactions_create",
        tags=["payments"],
        parameters=[KEY_PARAMETER],
        request=PaymentInSerializer,
        responses={201: TransactionSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        key = idempotency_key(request)
        serializer = PaymentInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = payment_ingest(
            payment=serializer.to_payment(),
            idempotency_key=key,
            principal=request.user,
            source=source_of(request.user),
        )
        response = Response(result.body, status=result.status)
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        summary="List transactions of a loan, or of a branch on a business date",
        operation_id="transactions_list",
        tags=["payments"],
        parameters=[
            OpenApiParameter("loan_account", OpenApiTypes.STR, description="Loan number"),
            OpenApiParameter("branch", OpenApiTypes.STR, description="Branch code"),
            OpenApiParameter("business_date", OpenApiTypes.DATE, description="With branch"),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="'next' of the last page"),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 200 (50)"),
        ],
        responses={
            200: TransactionListSerializer,
            400: error_response("Neither loan_account nor branch and business_date given"),
            401: error_response("No valid API key or session"),
            403: error_response("Missing scope or permission"),
            404: error_response("No such loan or branch in the caller's scope"),
            503: READ_UNAVAILABLE,
        },
    )
    def get(self, request):
        filters = TransactionFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        limit = self.pagination.get_page_size(request)
        if params.get("loan_account"):
            namespace = f"loan:{params['loan_account'].upper()}"
            rows, last_key = selectors.transactions_of_loan_for_api(
                user=request.user,
                loan_number=params["loan_account"],
                limit=limit,
                start_key=self.pagination.get_start_key(request, namespace=namespace),
            )
        elif params.get("branch") and params.get("business_date"):
            namespace = f"branch:{params['branch']}:{params['business_date']}"
            rows, last_key = selectors.transactions_of_branch_day_for_api(
                user=request.user,
                branch_code=params["branch"],
                business_date=params["business_date"],
                limit=limit,
                start_key=self.pagination.get_start_key(request, namespace=namespace),
            )
        else:
            raise ApplicationError(
                "Give loan_account, or branch and business_date.", code="filter_required"
            )
        return self.pagination.get_paginated_response(rows, last_key, namespace=namespace)


class TransactionBatchView(APIView):
    permission_classes = [HasScope]
    required_scopes = {"POST": scopes.TRANSACTIONS_WRITE}
    required_perms = {"POST": "payments.add_posting"}

    @extend_schema(
        summary="Record up to 100 payments, with a result per item",
        operation_id="transactions_batch_create",
        description="Each item is handled as a single payment would be, with its own "
        "idempotency key (its `idempotency_key`, or the header's key and its position), so a "
        "retried batch replays what was stored and stores only what was not. An item whose "
        "receipt number or external reference is already recorded (also by an earlier item "
        "of the same batch) gets status 409 and `duplicate_receipt` or "
        "`duplicate_external_reference` with `details.txn_id`; the other items are stored.",
        tags=["payments"],
        parameters=[KEY_PARAMETER],
        request=PaymentBatchSerializer,
        responses={200: BatchOutSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        key = idempotency_key(request)
        batch = BatchInSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        results = []
        for index, raw in enumerate(batch.validated_data["items"]):
            results.append(self._one(request, index, raw, default_key=f"{key}:{index}"))
        return Response({"results": results})

    def _one(self, request, index: int, raw: dict, *, default_key: str) -> dict:
        item = BatchItemSerializer(data=raw)
        if not item.is_valid():
            fields = {name: [str(m) for m in msgs] for name, msgs in item.errors.items()}
            return {
                "index": index,
                "status": 400,
                "replayed": False,
                **error_body("invalid", "The item is not valid.", fields),
            }
        try:
            result = payment_ingest(
                payment=item.to_payment(),
                idempotency_key=item.validated_data.get("idempotency_key") or default_key,
                principal=request.user,
                source=source_of(request.user),
            )
        except ApplicationError as exc:
            fields = {exc.field: [exc.message]} if exc.field else None
            return {
                "index": index,
                "status": exc.status,
                "replayed": False,
                **error_body(exc.code, exc.message, fields, exc.details),
            }
        return {
            "index": index,
            "status": result.status,
            "replayed": result.replayed,
            "transaction": result.body,
        }


class TransactionDetailView(APIView):
    permission_classes = [HasScope]
    required_scopes = {"GET": scopes.TRANSACTIONS_READ}
    required_perms = {"GET": "payments.view_posting"}

    @extend_schema(
        summary="Get one transaction",
        operation_id="transactions_retrieve",
        tags=["payments"],
        responses={
            200: TransactionSerializer,
            401: error_response("No valid API key or session"),
            403: error_response("Missing scope or permission"),
            404: error_response("No such transaction in the caller's branches"),
            503: READ_UNAVAILABLE,
        },
    )
    def get(self, request, txn_id: str):
        return Response(selectors.transaction_for_api(user=request.user, txn_id=txn_id))
