"""Payment ingestion and reads for integrations and staff.

Writes need an ``Idempotency-Key`` header: the same key with the same body replays the
first response (with ``Idempotent-Replayed: true``), also to a request sent while the first
was still being processed (the key and the payment are written in one DynamoDB
transaction: one of them wins, the other replays its answer); with another body it is a 409
``idempotency_key_reused``. A 409 ``request_in_flight`` with ``Retry-After`` is now rare
(see ``payments.services.ingest``): retry it with the same key. A receipt number already
recorded in the branch is a 409 ``duplicate_receipt``, an external reference the client
already sent a 409 ``duplicate_external_reference``, each with ``details.txn_id`` of the
recorded payment; nothing is stored and the key stays free (sent again, it gets the same
409; with a corrected body, it is accepted).
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
from api.schema import error_response, error_responses
from core.errors import ApplicationError
from payments import selectors
from payments.services import payment_ingest, transaction_body

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
# The errors of a payment (alone, or as one item of a batch), by code: one line each.
PAYMENT_ERRORS = {
    "invalid": (400, "a field is not valid (see `fields`)"),
    "malformed_json": (400, "the body is not JSON"),
    "too_deeply_nested": (400, "the JSON is nested too deep"),
    "idempotency_key_required": (400, "no Idempotency-Key header of 8 to 100 characters"),
    "not_authenticated": (401, "no valid API key or session"),
    "permission_denied": (403, "missing scope or permission"),
    "loan_not_found": (404, "no such loan account in the caller's branches"),
    "idempotency_key_reused": (409, "the Idempotency-Key was used with another body"),
    "request_in_flight": (409, "the first request with this key is still being processed"),
    "duplicate_receipt": (
        409,
        "the receipt number is already recorded in the branch: `details.txn_id` names that payment",
    ),
    "duplicate_external_reference": (
        409,
        "the external reference is already recorded by this client: `details.txn_id` names it",
    ),
    "request_too_large": (413, "the body is over the size limit"),
    "loan_not_active": (422, "the loan is not active"),
    "payment_rejected": (422, "the payment cannot be accepted"),
    "store_unavailable": (503, "the payments store is unavailable; retry with the same key"),
}
WRITE_ERRORS = error_responses(PAYMENT_ERRORS)

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
    openapi_links = {
        ("POST", "201"): {
            "GetTransaction": {
                "operationId": "transactions_retrieve",
                "parameters": {"txn_id": "$response.body#/txn_id"},
                "description": "The transaction just recorded.",
            }
        }
    }

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
        description="Give `loan_account`, or `branch` and `business_date` (an empty value "
        "counts as not given): without them the answer is a 400 `filter_required`. Newest "
        "first; pages by `cursor`. A transaction is seen by a caller of the branch that "
        "recorded it or of the branch holding its loan now.",
        operation_id="transactions_list",
        tags=["payments"],
        parameters=[
            OpenApiParameter("loan_account", OpenApiTypes.STR, description="Loan number"),
            OpenApiParameter("branch", OpenApiTypes.STR, description="Branch code"),
            OpenApiParameter("business_date", OpenApiTypes.DATE, description="With branch"),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="'next' of the last page"),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1},
                description="Items a page: 50 by default, more than 200 gives 200.",
            ),
        ],
        responses={
            200: TransactionListSerializer,
            400: error_response(
                "`filter_required`: neither `loan_account` nor `branch` and `business_date` "
                "given; `invalid` (see `fields`), `invalid_cursor`"
            ),
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
            page = selectors.transactions_for_loan(
                loan=params["loan_account"],
                user=request.user,
                limit=limit,
                start_key=self.pagination.get_start_key(request, namespace=namespace),
                shape=transaction_body,
            )
        elif params.get("branch") and params.get("business_date"):
            business_date = params["business_date"]
            namespace = f"branch:{params['branch']}:{business_date.isoformat()}"
            start_key = self.pagination.get_start_key(request, namespace=namespace)
            page = selectors.transactions_for_branch_day(
                branch_id=selectors.branch_for_user(code=params["branch"], user=request.user).pk,
                business_date=business_date,
                user=request.user,
                limit=limit,
                start_key=start_key,
                shape=transaction_body,
            )
        else:
            raise ApplicationError(
                "Give loan_account, or branch and business_date.", code="filter_required"
            )
        return self.pagination.get_paginated_response(page.rows, page.next_key, namespace=namespace)


class TransactionBatchView(APIView):
    permission_classes = [HasScope]
    required_scopes = {"POST": scopes.TRANSACTIONS_WRITE}
    required_perms = {"POST": "payments.add_posting"}

    @extend_schema(
        summary="Record up to 100 payments, with a result per item",
        operation_id="transactions_batch_create",
        description="Each item is handled as a single payment would be, with its own "
        "idempotency key (its `idempotency_key`, or the header's key and its position), so a "
        "retried batch replays what was stored and stores only what was not. The answer is a "
        "200 with a result per item, in order: its `status` (the HTTP status it would have "
        "alone) and its `transaction`, or its `error` (the codes below, by status). An item "
        "that is not a valid BatchItem is refused in its own result (400 `invalid`) and the "
        "others are still recorded. An item whose receipt number or external reference is "
        "already recorded (also by an earlier item of the same batch) gets status 409 with "
        "`duplicate_receipt` or `duplicate_external_reference` and `details.txn_id`. A body "
        "that is not 1 to 100 objects is a 400 for the whole batch.",
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
        return Response(
            selectors.transaction_for_user(txn_id=txn_id, user=request.user, shape=transaction_body)
        )
