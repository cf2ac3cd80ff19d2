"""Readiness checks of the three stores, each bounded by a short timeout."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connections

from dynamo.connection import boto3_client

CHECK_TIMEOUT = 2.0


def check_postgres() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


def check_dynamodb() -> None:
    boto3_client(connect_timeout=CHECK_TIMEOUT, retries=0).list_tables(Limit=1)


CHECKS = {"postgres": check_postgres, "redis": check_redis, "dynamodb": check_dynamodb}


def run_checks() -> dict[str, str]:
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure of a store means "not ready"
            results[name] = f"down: {type(exc).__name__}"
        else:
            results[name] = "ok"
    return results
