"""One error format for the whole API, and Django's own error pages under /api/.

Every error is JSON::

    {"error": {"code": "<stable_code>", "message": "<human text>",
               "fields": {"<field>": ["<message>", ...]},     # "fields" only when known
               "details": {"txn_id": "..."}}}                 # "details" only when given

``code`` is stable (clients branch on it); ``message`` is for people and may change.

================================  ======  =========================================
What                              Status  code
================================  ======  =========================================
DRF ValidationError, Django's     400     ``invalid`` (with ``fields``; errors not
ValidationError                           about one field under ``non_field_errors``)
ParseError (bad JSON)             400     ``malformed_json``
JSON nested too deep              400     ``too_deeply_nested`` (``api.limits``)
A body over the size limit        413     ``request_too_large`` (``api.limits``)
NotAuthenticated,                 401     ``not_authenticated`` (``WWW-Authenticate``)
AuthenticationFailed
PermissionDenied (DRF, Django)    403     ``permission_denied``
NotFound, Http404                 404     ``not_found``
MethodNotAllowed                  405     ``method_not_allowed``
NotAcceptable                     406     ``not_acceptable``
UnsupportedMediaType              415     ``unsupported_media_type``
Throttled                         429     ``throttled`` (``Retry-After``)
``core.errors.ApplicationError``   its     its ``code``; its ``field`` becomes
                                  status  ``fields``; its ``details`` and ``headers``
                                          are copied
anything else                     500     ``internal_error``, a generic message; logged
                                          with the request id, never the traceback
================================  ======  =========================================

``handler400/403/404/500`` below are Django's error views for ``config.urls``: JSON under
``/api/``, Django's normal pages elsewhere (but a 403 for a member of staff is the admin's
page with its navigation: ``core.admin.site.permission_denied``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from core.admin.site import permission_denied
from core.errors import ApplicationError

from .limits import limit_error

logger = logging.getLogger("api")

API_PREFIX = "/api/"
INTERNAL_ERROR_MESSAGE = "Something went wrong on our side. Quote the request id to support."
INVALID_MESSAGE = "The request is invalid: see fields."

CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(
    code: str,
    message: str,
    fields: dict[str, list[str]] | None = None,
    details: dict[str, str] | None = None,
) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    if details:
        error["details"] = details
    return {"error": error}


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's ``EXCEPTION_HANDLER``: every exception becomes the error envelope."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_detail(exc))
    exc = limit_error(exc) or exc

    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        status_code = exc.status
        fields = {exc.field: [exc.message]} if exc.field else None
        body = error_body(exc.code, exc.message, fields, exc.details)
        headers.update(exc.headers)
    elif isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        body = _api_exception_body(exc)
    else:
        request = context.get("request")
        logger.error(
            "Unhandled error in %s %s (request id %s)",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            getattr(request, "request_id", None) or _request_id(),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
        body = error_body("internal_error", INTERNAL_ERROR_MESSAGE)

    set_rollback()
    return Response(body, status=status_code, headers=headers)


def _api_exception_body(exc: exceptions.APIException) -> dict:
    code = next(
        (code for cls, code in CODES.items() if isinstance(exc, cls)), exc.default_code or "error"
    )
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        non_field = fields.get(api_settings.NON_FIELD_ERRORS_KEY)
        message = " ".join(non_field) if non_field and len(fields) == 1 else INVALID_MESSAGE
        return error_body(code, message, fields)
    if isinstance(exc, exceptions.ParseError):
        return error_body(code, f"The request body could not be parsed: {exc.detail}")
    return error_body(code, str(exc.detail))


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field": [...], "items.0.amount": [...]}``."""
    key = prefix or api_settings.NON_FIELD_ERRORS_KEY
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for name, value in detail.items():
            fields.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
        return fields
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {key: [str(item) for item in detail]}
        fields = {}
        for index, item in enumerate(detail):
            if item:  # many=True gives {} for the valid items
                fields.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return fields
    return {key: [str(detail)]}


def _django_validation_detail(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if name == "__all__" else name): messages
            for name, messages in exc.message_dict.items()
        }
    return exc.messages


def _request_id() -> str | None:
    from core import context

    return context.current().request_id


# --- Django's error views (config.urls: handler400, handler403, handler404, handler500) ---


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _json(code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request, exception=None):
    if is_api_request(request):
        limit = limit_error(exception) if exception is not None else None
        if limit is not None:
            return _json(limit.code, limit.message, limit.status)
        return _json("bad_request", "The request is malformed.", 400)
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if is_api_request(request):
        return _json("permission_denied", "You do not have permission to do this.", 403)
    return permission_denied(request, exception)


def handler404(request, exception=None):
    if is_api_request(request):
        return _json("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if is_api_request(request):
        return _json("internal_error", INTERNAL_ERROR_MESSAGE, 500)
    return defaults.server_error(request)


@csrf_exempt
def not_found(request, *args, **kwargs):
    """The last pattern of ``api.urls``: an unknown API URL is a JSON 404, also with DEBUG
    on (when Django would otherwise show its HTML debug page). CSRF-exempt: it changes
    nothing, and a POST there must be that 404, not the CSRF failure's HTML 403."""
    return _json("not_found", f"No API endpoint at {request.path}.", 404)
