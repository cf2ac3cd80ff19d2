"""Log lines as one JSON object each, carrying the request id and who or what is running.

``settings.LOGGING`` puts :class:`ContextFilter` and :class:`JsonFormatter` on the one
console handler of the web process; Celery workers and beat use the same configuration
(``config/celery.py``). ``LOG_FORMAT=text`` gives a plain line for humans instead.

Secrets never reach a line: the filter masks credentials in the message and in the
traceback (``Authorization`` values, ``password=...``, ``api_key: ...``, passwords in URLs),
and the formatter writes only plain values of ``extra``, never objects such as a request
(whose ``repr`` would show its headers) and never a field named like a secret.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re

from celery import current_task
from django.utils.functional import LazyObject, empty
from gunicorn.glogging import Logger as GunicornBaseLogger

from core import context

MASK = "[REDACTED]"
_CREDENTIAL = re.compile(r"(?i)\b(api-key|bearer)(\s+)[^\s,;\"'&]+")
_SENSITIVE_NAME = r"[\w-]*(?:password|passwd|secret|api[_-]?key|token)[\w-]*"
_SECRET_PAIR = re.compile(rf"(?i)\b({_SENSITIVE_NAME})([\"']?\s*[:=]\s*[\"']?)[^\s,;\"'&}}]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_SECRET_KEY = re.compile(rf"(?i)^{_SENSITIVE_NAME}$|^authorization$")

# What every LogRecord has; anything else on a record came from ``extra``.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_OWN_FIELDS = ("request_id", "user_id", "api_client_id", "task_name", "task_id")


def redact(text: str) -> str:
    text = _CREDENTIAL.sub(rf"\1\2{MASK}", text)
    text = _SECRET_PAIR.sub(rf"\1\2{MASK}", text)
    return _URL_PASSWORD.sub(rf"\1{MASK}@", text)


def _evaluated(user):
    """The user behind a request's lazy ``request.user`` only if something already loaded
    it: a log line must never query the session store or the database."""
    if isinstance(user, LazyObject):
        return None if user._wrapped is empty else user._wrapped
    return user


def actor_fields(user) -> dict[str, int]:
    user = _evaluated(user)
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    if getattr(user, "is_api_client", False):
        return {"api_client_id": user.api_client_id}
    return {"user_id": user.pk} if user.pk is not None else {}


class ContextFilter(logging.Filter):
    """Adds the request id, the actor and the running Celery task to every record, and
    masks secrets in its message and traceback. It never drops a record."""

    _traceback = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = context.bound()
        record.request_id = ctx.request_id if ctx is not None else None
        for name, value in actor_fields(ctx.user if ctx is not None else None).items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        task = current_task._get_current_object()
        record.task_name = task.name if task is not None else None
        record.task_id = task.request.id if task is not None else None
        if not getattr(record, "_redacted", False):
            try:
                record.msg, record.args = redact(record.getMessage()), ()
            except Exception:  # bad arguments: logging itself reports them when formatting
                record.msg = redact(str(record.msg))
            if record.exc_info and not record.exc_text:
                record.exc_text = self._traceback.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
            record._redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in _OWN_FIELDS[1:]:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        for name, value in vars(record).items():
            if name in _RECORD_FIELDS or name in line or name.startswith("_"):
                continue
            if name in _OWN_FIELDS or _SECRET_KEY.match(name):
                continue
            if isinstance(value, str):
                line[name] = redact(value)
            elif value is None or isinstance(value, bool | int | float):
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's own lines (start-up, workers, errors, and the access log if one is
    kept) as JSON too: ``gunicorn --logger-class ops.logging.GunicornLogger``. The master
    process has no Django settings, so it reads ``LOG_FORMAT`` from the environment."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if os.environ.get("LOG_FORMAT", "json") != "json":
            return
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
                handler.addFilter(ContextFilter())
