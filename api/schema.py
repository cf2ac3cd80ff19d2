"""OpenAPI (drf-spectacular): the Api-Key security scheme, the error envelope component
and the schema class every API view uses (``DEFAULT_SCHEMA_CLASS``).

:class:`ApiAutoSchema` adds the error responses an operation can give (401, 403; 400 for
writes and filtered lists; 404 where the path names an object or a list has numbered pages;
429 where throttled), each documented with the ``ErrorEnvelope`` component, unless the
view declares that status itself with ``@extend_schema(responses={...})``; and it states
the scope and permission :class:`api.permissions.HasScope` asks for in the operation's
description. Views declare their own extra errors (409, 503...) with ``error_response("...")``::

    @extend_schema(responses={201: TransactionSerializer, 409: error_response("Replayed key")})
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny

from .authentication import HEADER, KEYWORD
from .permissions import HasScope


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: branch on this.")
    message = serializers.CharField(help_text="For people; may change.")

    def get_fields(self):
        fields = super().get_fields()
        # "fields" is also a Serializer attribute: declared here instead of on the class
        fields["fields"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="The messages of each invalid field (dotted paths for nested fields; "
            "non_field_errors for the request as a whole).",
        )
        fields["details"] = serializers.DictField(
            child=serializers.CharField(),
            required=False,
            help_text="Facts a client can act on, e.g. for duplicate_receipt the txn_id of "
            "the payment that already has the receipt number.",
        )
        return fields


class ErrorEnvelopeSerializer(serializers.Serializer):
    """Every API error has this shape."""

    error = ErrorDetailSerializer()


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorEnvelopeSerializer, description=description)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": HEADER,
            "description": (
                f"A per-client API key (bo_live_...), as `{HEADER}: <key>` or "
                f"`Authorization: {KEYWORD} <key>`. What it may do is limited by its scopes "
                "and branches."
            ),
        }


class ApiAutoSchema(AutoSchema):
    def get_operation(self, *args, **kwargs):
        # here rather than in get_description(), which @extend_schema(description=) replaces
        operation = super().get_operation(*args, **kwargs)
        access = self._access_text()
        if operation is not None and access:
            operation["description"] = f"{operation.get('description', '')}\n\n{access}".strip()
        return operation

    def _access_text(self) -> str:
        if not any(isinstance(p, HasScope) for p in self.view.get_permissions()):
            return ""
        method = "GET" if self.method in ("HEAD", "OPTIONS") else self.method
        scope = getattr(self.view, "required_scopes", {}).get(method)
        perm = getattr(self.view, "required_perms", {}).get(method)
        parts = []
        if scope:
            parts.append(f"API keys need the scope `{_names(scope)}`")
        if perm:
            parts.append(f"staff sessions need the permission `{_names(perm)}`")
        return ("Access: " + "; ".join(parts) + ".") if parts else ""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in self._error_statuses():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    error_response(description), code, direction=direction
                )
        return responses

    def _error_statuses(self) -> list[tuple[str, str]]:
        statuses = []
        writes = self.method in ("POST", "PUT", "PATCH")
        lists = self._is_list_view() and (self.get_filter_backends() or self._get_paginator())
        if writes or lists:
            statuses.append(("400", "Invalid input: `invalid` (see `fields`), `malformed_json`."))
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            statuses.append(("401", "No, unknown or inactive credentials: `not_authenticated`."))
            statuses.append(("403", "Missing scope or permission: `permission_denied`."))
        if "{" in self.path:
            statuses.append(("404", "No such object, or not in your branches: `not_found`."))
        elif self._is_list_view() and isinstance(self._get_paginator(), PageNumberPagination):
            statuses.append(("404", "No such page (`?page=` out of range): `not_found`."))
        if self.view.get_throttles():
            statuses.append(("429", "Too many requests: `throttled`; see `Retry-After`."))
        return statuses


def _names(value) -> str:
    return value if isinstance(value, str) else "`, `".join(value)
