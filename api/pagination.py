"""Pagination of API lists.

- Postgres lists: :class:`PageNumberPagination` (the default): ``?page=2&page_size=100``,
  50 a page, at most 200; ``{"count", "next", "previous", "results"}``.
- DynamoDB lists: :class:`DynamoCursorPagination`, ``{"results": [...], "next": <token>}``
  where ``next`` is an opaque, URL-safe, signed token of DynamoDB's ``LastEvaluatedKey``
  (``null`` on the last page), passed back as ``?cursor=<token>``. Clients cannot forge
  or edit a cursor: a bad one is a 400 ``invalid_cursor``.

In a DynamoDB list view::

    class TransactionViewSet(viewsets.GenericViewSet):
        pagination_class = DynamoCursorPagination

        def list(self, request):
            paginator = self.paginator
            page = transactions_for_branch(            # a selector doing Query(...)
                branch_id=...,
                limit=paginator.get_page_size(request),
                last_evaluated_key=paginator.get_start_key(request, namespace=f"branch:{...}"),
            )
            data = TransactionSerializer(page.items, many=True).data
            return paginator.get_paginated_response(
                data, page.last_evaluated_key, namespace=f"branch:{...}"
            )

``namespace`` (optional) binds a cursor to one list (e.g. one branch's partition), so a
cursor from one list is refused by another instead of reaching DynamoDB as a foreign key.
"""

from __future__ import annotations

from typing import Any

from django.core import signing
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from core.errors import ApplicationError

from .fields import parse_count

CURSOR_SALT = "api.pagination.cursor"


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's, but strict: a ``page_size`` or ``page`` that is not one whole number in ASCII
    digits is an error (DRF would fall back to the default size, read an Arabic-Indic "1"
    as 1 and keep a repeated parameter in the ``next`` link)."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"

    def get_page_size(self, request) -> int:
        size = parse_count(request, self.page_size_query_param, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def get_page_number(self, request, paginator):
        values = request.query_params.getlist(self.page_query_param)
        if values == ["last"]:
            return "last"
        try:
            number = parse_count(request, self.page_query_param)
        except ApplicationError:
            raise NotFound("Invalid page: a page number is a whole number from 1.") from None
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters


def _signer(namespace: str) -> signing.Signer:
    # "." is URL-safe and never part of the base64 payload or the signature
    return signing.Signer(salt=f"{CURSOR_SALT}:{namespace}", sep=".")


def encode_cursor(last_evaluated_key: dict | None, *, namespace: str = "") -> str | None:
    """DynamoDB's ``LastEvaluatedKey`` (JSON-able) as an opaque URL-safe token; None stays
    None (the last page has no next cursor)."""
    if last_evaluated_key is None:
        return None
    if not isinstance(last_evaluated_key, dict):
        raise TypeError("a cursor is made from DynamoDB's LastEvaluatedKey (a dict)")
    return _signer(namespace).sign_object(last_evaluated_key, compress=True)


def decode_cursor(token: str | None, *, namespace: str = "") -> dict | None:
    """The ``LastEvaluatedKey`` of a token from :func:`encode_cursor`; None or "" gives None
    (the first page). A forged, edited or foreign token raises ``ApplicationError``
    (``invalid_cursor``, 400)."""
    if not token:
        return None
    try:
        value = _signer(namespace).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(value, dict):
        raise _invalid_cursor()
    return value


def _invalid_cursor() -> ApplicationError:
    return ApplicationError(
        "The cursor is not valid: use the 'next' value of the previous page as it is.",
        code="invalid_cursor",
        status=400,
        field="cursor",
    )


class DynamoCursorPagination(pagination.BasePagination):
    """Cursor pages over a DynamoDB ``Query``; see the module docstring."""

    cursor_query_param = "cursor"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"

    def get_page_size(self, request) -> int:
        size = parse_count(request, self.page_size_query_param, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def get_start_key(self, request, *, namespace: str = "") -> dict | None:
        return decode_cursor(request.query_params.get(self.cursor_query_param), namespace=namespace)

    def get_paginated_response(
        self, data, last_evaluated_key: dict | None = None, *, namespace: str = ""
    ) -> Response:
        return Response(
            {"results": data, "next": encode_cursor(last_evaluated_key, namespace=namespace)}
        )

    def paginate_queryset(self, queryset, request, view=None):
        raise NotImplementedError(
            "DynamoCursorPagination pages DynamoDB queries: call get_start_key() and "
            "get_paginated_response() from the view (see api.pagination)"
        )

    def get_paginated_response_schema(self, schema: dict) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "nullable": True,
                    "description": "Pass as ?cursor= for the next page; null on the last page.",
                },
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The 'next' value of the previous page.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Items a page: {self.page_size} by default, more than "
                f"{self.max_page_size} gives {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
