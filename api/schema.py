"""OpenAPI (drf-spectacular): the Api-Key security scheme, the error envelope component
and the schema class every API view uses (``DEFAULT_SCHEMA_CLASS``).

:class:`ApiAutoSchema` adds the error responses an operation can give (401, 403; 400 for
writes and filtered lists; 404 where the path names an object or a list has numbered pages;
429 where throttled), each documented with the ``ErrorEnvelope`` component, unless the
view declares that status itself with ``@extend_schema(responses={...})``; and it states
the scope and permission :class:`api.permissions.HasScope` asks for in the operation's
description. Writes also document the 413 of a body over the size limit (``api.limits``).

Views declare OpenAPI links from a response to the next operation in ``openapi_links``.

Views declare their own errors by code, one line each, with :func:`error_responses` (one
response a status, whose description lists its codes)::

    ERRORS = {"idempotency_key_reused": (409, "The key was used with another body.")}

    @extend_schema(responses={201: TransactionSerializer, **error_responses(ERRORS)})

A list whose items are validated one by one, with a result per item (instead of refusing
the whole request), is a :class:`PerItemListField`: its documented items are "the item's
schema, or any other object" so that generated clients and schemathesis expect a 2xx
answer with that item's error.
"""

from __future__ import annotations

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
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


def error_responses(errors: dict[str, tuple[int, str]]) -> dict[int, OpenApiResponse]:
    """The documented error responses of ``{code: (status, when)}``: one a status, its
    description listing each code and when it is given."""
    by_status: dict[int, list[str]] = {}
    for code, (status, when) in errors.items():
        by_status.setdefault(status, []).append(f"`{code}`: {when}")
    return {status: error_response("; ".join(lines)) for status, lines in sorted(by_status.items())}


class PerItemListField(serializers.ListField):
    """A list of objects validated one by one by the view (``child`` documents them): an
    item that is not valid gets an error in its result; what is not an object still
    fails the whole request."""

    def __init__(self, **kwargs) -> None:
        self.item_serializer = kwargs.pop("child")
        super().__init__(child=serializers.DictField(), **kwargs)


class PerItemListFieldSchema(OpenApiSerializerFieldExtension):
    target_class = PerItemListField

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        item = auto_schema.resolve_serializer(field.item_serializer, direction).ref
        schema = {
            "type": "array",
            "items": {
                "anyOf": [
                    item,
                    {
                        "type": "object",
                        "description": "Any other object: answered in its own result "
                        "with status 400 and code `invalid`.",
                    },
                ]
            },
        }
        if field.min_length is not None:
            schema["minItems"] = field.min_length
        if field.max_length is not None:
            schema["maxItems"] = field.max_length
        return schema


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
        if operation is not None:
            self._add_links(operation)
        return operation

    def _add_links(self, operation: dict) -> None:
        """OpenAPI links a view declares as ``openapi_links = {(method, status): {name:
        link}}``: how a client (and schemathesis's stateful phase) goes from this answer
        to the next operation, e.g. from a created transaction to reading it."""
        links = getattr(self.view, "openapi_links", {})
        for (method, status), declared in links.items():
            if method == self.method and status in operation.get("responses", {}):
                operation["responses"][status]["links"] = declared

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
        if writes:
            statuses.append(
                (
                    "400",
                    "Invalid input: `invalid` (see `fields`), `malformed_json`, "
                    "`too_deeply_nested`.",
                )
            )
        elif lists:
            statuses.append(("400", "Invalid input: `invalid` (see `fields`)."))
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            statuses.append(("401", "No, unknown or inactive credentials: `not_authenticated`."))
            statuses.append(("403", "Missing scope or permission: `permission_denied`."))
        if writes:
            statuses.append(("413", "The body is over the size limit: `request_too_large`."))
        if "{" in self.path:
            statuses.append(("404", "No such object, or not in your branches: `not_found`."))
        elif self._is_list_view() and isinstance(self._get_paginator(), PageNumberPagination):
            statuses.append(("404", "No such page (`?page=` out of range): `not_found`."))
        if self.view.get_throttles():
            statuses.append(("429", "Too many requests: `throttled`; see `Retry-After`."))
        return statuses


NO_NUL = "^[^\\u0000]*$"


def text_without_nul(result, generator, request, public):
    """A ``POSTPROCESSING_HOOKS`` entry: every text a request sends (query, path and header
    parameters, request bodies) is documented without NUL characters, which the server
    refuses (Django's and DRF's text fields do: PostgreSQL cannot store them)."""
    schemas = [
        parameter["schema"]
        for operations in result.get("paths", {}).values()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if "schema" in parameter
    ]
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            schemas.extend(component.get("properties", {}).values())
    for schema in schemas:
        if schema.get("type") == "string" and not {"pattern", "enum", "format"} & set(schema):
            schema["pattern"] = NO_NUL
    return result


def _names(value) -> str:
    return value if isinstance(value, str) else "`, `".join(value)
