"""The limits of an API request, in one place: how big a body and how deeply nested its
JSON may be. Past them a request is a clear JSON error, never a 500:

- a body over Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django raises
  ``RequestDataTooBig`` when the body is read): 413 ``request_too_large``;
- JSON nested deeper than :data:`MAX_JSON_DEPTH` (deep enough that Python's parser or a
  serializer would hit ``RecursionError``, or just work for nothing): 400
  ``too_deeply_nested``.

:class:`JSONParser` is the API's only parser (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``);
:func:`limit_error` turns Django's ``RequestDataTooBig`` into :class:`RequestTooLarge` for
the exception handler and for Django's ``handler400``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import parsers

from core.errors import ApplicationError

MAX_JSON_DEPTH = 32  # a batch of payments is 3 deep


class RequestTooLarge(ApplicationError):
    code = "request_too_large"
    status = 413


class TooDeeplyNested(ApplicationError):
    code = "too_deeply_nested"
    status = 400


def max_body_bytes() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def limit_error(exc: BaseException) -> ApplicationError | None:
    """The API error for an exception that means a limit was passed, else None."""
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge(f"The request body is larger than {max_body_bytes()} bytes.")
    return None


def _too_deep() -> TooDeeplyNested:
    return TooDeeplyNested(f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")


def check_depth(data, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`TooDeeplyNested` when ``data`` (parsed JSON) nests arrays and objects
    more than ``limit`` levels deep; iterative, so any depth is safe to check."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            raise _too_deep()
        pending.extend((child, depth + 1) for child in children)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser within :data:`MAX_JSON_DEPTH`."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        check_depth(data)
        return data
