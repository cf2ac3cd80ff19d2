"""Carry the request id into Celery tasks: a task enqueued during a request runs with that
request's id (in its audit events and logs); a task from beat gets an id of its own."""

from __future__ import annotations

from celery import signals

from . import context

HEADER = "backoffice_request_id"
_tokens: dict[str, object] = {}


@signals.before_task_publish.connect
def _add_request_id(headers=None, **kwargs) -> None:
    if headers is not None and HEADER not in headers:
        headers[HEADER] = context.current().request_id


@signals.task_prerun.connect
def _bind(task_id=None, task=None, **kwargs) -> None:
    request_id = getattr(task.request, HEADER, None) or task_id or context.new_request_id()
    _tokens[task_id] = context.bind(context.RequestContext(request_id=request_id))


@signals.task_postrun.connect
def _reset(task_id=None, **kwargs) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        context.reset(token)
