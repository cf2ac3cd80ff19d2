"""Low-level DynamoDB clients built from the same settings as the models.

``TransactWrite``/``TransactGet`` need a PynamoDB ``Connection`` (otherwise they talk to
real AWS); table administration and health checks use a boto3 client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import boto3
from botocore.config import Config
from django.conf import settings
from pynamodb.connection import Connection

T = TypeVar("T")
_connections: dict[tuple, Connection] = {}


def settings_key() -> tuple:
    """What a shared client depends on: a settings change (in tests) gets a new one."""
    return (
        settings.DYNAMODB_ENDPOINT,
        settings.DYNAMODB_REGION,
        settings.DYNAMODB_ACCESS_KEY,
        settings.DYNAMODB_CONNECT_TIMEOUT,
        settings.DYNAMODB_READ_TIMEOUT,
        settings.DYNAMODB_MAX_RETRIES,
    )


def for_settings(built: dict[tuple, T], build: Callable[[], T]) -> T:
    """The process's shared client in ``built`` for the settings now, built on first use
    (a settings change in tests gets a new one)."""
    key = settings_key()
    client = built.get(key)
    if client is None:
        client = built[key] = build()
    return client


def pynamodb_connection() -> Connection:
    """A shared Connection (its botocore client is thread-safe and costly to build)."""
    return for_settings(_connections, _new_connection)


def _new_connection() -> Connection:
    return Connection(
        region=settings.DYNAMODB_REGION,
        host=settings.DYNAMODB_ENDPOINT,
        connect_timeout_seconds=settings.DYNAMODB_CONNECT_TIMEOUT,
        read_timeout_seconds=settings.DYNAMODB_READ_TIMEOUT,
        max_retry_attempts=settings.DYNAMODB_MAX_RETRIES,
        aws_access_key_id=settings.DYNAMODB_ACCESS_KEY,
        aws_secret_access_key=settings.DYNAMODB_SECRET_KEY,
    )


def boto3_client(
    *, connect_timeout: float | None = None, retries: int | None = None, service: str = "dynamodb"
):
    """A boto3 client of DynamoDB (or, with ``service="dynamodbstreams"``, of its Streams:
    DynamoDB Local answers both on the same endpoint)."""
    config = Config(
        connect_timeout=connect_timeout or settings.DYNAMODB_CONNECT_TIMEOUT,
        read_timeout=settings.DYNAMODB_READ_TIMEOUT,
        retries={
            "max_attempts": settings.DYNAMODB_MAX_RETRIES if retries is None else retries,
            "mode": "standard",
        },
    )
    return boto3.client(
        service,
        endpoint_url=settings.DYNAMODB_ENDPOINT,
        region_name=settings.DYNAMODB_REGION,
        aws_access_key_id=settings.DYNAMODB_ACCESS_KEY,
        aws_secret_access_key=settings.DYNAMODB_SECRET_KEY,
        config=config,
    )
