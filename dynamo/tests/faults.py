"""Fault injection for what DynamoDB Local never does: throttling and transaction conflicts.

``inject(operation, fault, times)`` makes the next ``times`` calls of a DynamoDB operation
fail as AWS answers them (a ``ClientError`` with AWS's error shape, parsed by PynamoDB as
for a real answer), above botocore's own retries, and likewise for the calls sent by hand
(``dynamo.wire``: the error its client builds from AWS's JSON answer). For the reliability
tests only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from dynamo.wire import WireClient, client_error

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

    def fires() -> bool:
        with _lock:
            fire = injection.remaining > 0
            if fire:
                injection.remaining -= 1
                injection.raised += 1
        return fire

    def failing(client, operation_name, params):
        dynamodb = client.meta.service_model.service_name == "dynamodb"
        if dynamodb and operation_name == operation and fires():
            raise ClientError(_response(fault, operation_name, params), operation_name)
        return original(client, operation_name, params)

    original_wire = WireClient.call

    def failing_wire(client, operation_name, body):
        if operation_name == operation and fires():
            response = _response(fault, operation_name, body)
            answer = {  # AWS's JSON answer of the same error
                "__type": f"com.amazonaws.dynamodb.v20120810#{response['Error']['Code']}",
                "message": response["Error"]["Message"],
                "CancellationReasons": response.get("CancellationReasons", []),
            }
            raise client_error(operation_name, 400, answer)
        return original_wire(client, operation_name, body)

    BaseClient._make_api_call = failing
    WireClient.call = failing_wire
    try:
        yield injection
    finally:
        BaseClient._make_api_call = original
        WireClient.call = original_wire
