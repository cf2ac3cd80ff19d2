"""One-line descriptions of start-up faults: bad configuration, unreachable services."""

from __future__ import annotations

import os


def _walk(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def describe_startup_fault(exc: BaseException) -> str | None:
    """Return one line for a known start-up fault, or None for anything else."""
    from django.core.exceptions import ImproperlyConfigured

    for err in _walk(exc):
        module = type(err).__module__
        name = type(err).__name__
        first_line = (str(err).strip().splitlines() or [name])[0]
        if isinstance(err, ImproperlyConfigured):
            return first_line
        if module.startswith(("psycopg", "django.db")) and name in {
            "OperationalError",
            "PoolTimeout",
            "InterfaceError",
        }:
            return (
                "PostgreSQL is unreachable "
                f"(DATABASE_URL={_redact(os.environ.get('DATABASE_URL'))}): "
                f"{first_line}; start it with bin/services start postgres"
            )
        if module.startswith("redis") and name in {"ConnectionError", "TimeoutError"}:
            return (
                f"Redis is unreachable (REDIS_URL): {first_line}; "
                "start it with bin/services start redis"
            )
        if module.startswith(("botocore", "urllib3")) and name in {
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
            "NewConnectionError",
        }:
            return (
                f"DynamoDB is unreachable (DYNAMODB_ENDPOINT): {first_line}; "
                "start it with bin/services start dynamodb"
            )
    return None


def _redact(url: str | None) -> str:
    if not url:
        return "default local"
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
