"""The base of every domain error: a stable ``code`` for machines, a message for people.

Services raise subclasses; the API's exception handler turns them into
``{"error": {"code": ..., "message": ..., "fields": ..., "details": ...}}`` with
``status``; the admin and workflow screens show the message.
"""

from __future__ import annotations


class ApplicationError(Exception):
    code = "error"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.field = field
        self.headers = headers or {}
        self.details = details or {}  # machine-readable facts, e.g. the conflicting object's id

    def __str__(self) -> str:
        return self.message


class NotFound(ApplicationError):
    code = "not_found"
    status = 404


class Conflict(ApplicationError):
    code = "conflict"
    status = 409


class ServiceUnavailable(ApplicationError):
    """A store this request needs is down: the client should retry later."""

    code = "service_unavailable"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)
