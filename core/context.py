"""Who and where a change comes from: request id, client IP and actor, per request or task."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RequestContext:
    """``user`` is the request's (lazy) user or a task's acting user; None for the system."""

    request_id: str
    ip: str | None = None
    user: Any = None

    @property
    def actor(self):
        user = self.user
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return user


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "request_context", default=None
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current() -> RequestContext:
    """The bound context (a request's, a task's), or a fresh one for code outside both.

    A fresh one is not kept: a long-lived thread must not reuse one request id forever.
    Requests are bound by the middleware and Celery tasks by ``core.celery_context``."""
    ctx = _current.get()
    return ctx if ctx is not None else RequestContext(request_id=new_request_id())


def bound() -> RequestContext | None:
    """The bound context, or None outside a request or task (log lines then carry no id)."""
    return _current.get()


def bind(ctx: RequestContext) -> contextvars.Token:
    return _current.set(ctx)


@contextmanager
def acting_as(user, *, request_id: str | None = None) -> Iterator[RequestContext]:
    """Run code (a task, a command) on behalf of ``user`` so that audit events name them."""
    ctx = RequestContext(request_id=request_id or current().request_id, user=user)
    token = bind(ctx)
    try:
        yield ctx
    finally:
        reset(token)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
