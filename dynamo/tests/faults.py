"""Fault injection for what DynamoDB Local never does: throttling and transaction conflicts.

``inject(operation, fault, times)`` makes the next ``times`` calls of a DynamoDB operation
fail as AWS answers them (a ``ClientError`` with AWS's error shape, parsed by PynamoDB as
for a real answer), above botocore's own retries. For the reliability tests only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.client import BaseClient
from botocore.exceptions import ClientError

FAULTS = {
    "throttling": ("ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    "conflict": (
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[TransactionConflict]",
    ),
    "unavailable": ("ServiceUnavailable", "Service unavailable"),
}


@dataclass
class Injection:
    operation: str
    fault: str
    remaining: int
    raised: int = 0


_lock = threading.Lock()


def _response(fault: str, operation: str, params: dict) -> dict:
    code, message = FAULTS[fault]
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    if fault == "conflict":
        items = params.get("TransactItems", [None])
        response["CancellationReasons"] = [
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
        ] + [{"Code": "None"}] * (len(items) - 1)
    return response


@contextmanager
def inject(operation: str, fault: str, times: int) -> Iterator[Injection]:
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
    injection = Injection(operation, fault, times)
    original = BaseClient._make_api_call

    def failing(client, operation_name, params):
        if client.meta.service_model.service_name == "dynamodb" and operation_name == operation:
            with _lock:
                fire = injection.remaining > 0
                if fire:
                    injection.remaining -= 1
                    injection.raised += 1
            if fire:
                raise ClientError(_response(fault, operation_name, params), operation_name)
        return original(client, operation_name, params)

    BaseClient._make_api_call = failing
    try:
        yield injection
    finally:
        BaseClient._make_api_call = original
