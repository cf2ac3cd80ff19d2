"""Who and where a change comes from: request id, client IP and actor, per request or task."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    ip: str | None = None
    user_id: int | None = None


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "request_context", default=None
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current() -> RequestContext:
    ctx = _current.get()
    if ctx is None:
        ctx = RequestContext(request_id=new_request_id())
        _current.set(ctx)
    return ctx


def bind(ctx: RequestContext) -> contextvars.Token:
    return _current.set(ctx)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
