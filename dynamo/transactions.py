"""TransactWriteItems with the retries PynamoDB does not do.

PynamoDB does not retry a cancelled transaction; AWS cancels one on a conflict with
another transaction or on throttling. Those are retried here with exponential backoff
and jitter; a cancellation by a failed condition is the caller's business and raised.

``transact_write`` builds the items with PynamoDB's ``TransactWrite``; ``transact_put``
sends puts the caller built in DynamoDB's wire form (``{"TableName", "Item",
"ConditionExpression", ...}``) signed and sent by hand (``dynamo.wire``), for a path where
PynamoDB's models, expressions and botocore's generic request cost too much (a payment's
ingestion). Both raise the same ``TransactWriteError`` with its cancellation reasons.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from .connection import pynamodb_connection
from .errors import is_retryable_transaction
from .wire import wire_client

MAX_ATTEMPTS = 6
BASE_DELAY = 0.05


def transact_write(
    build: Callable[[TransactWrite], None], *, client_request_token: str | None = None
) -> None:
    """Run ``build(tw)`` inside a TransactWrite, retrying transient cancellations.

    A ``client_request_token`` makes a retried call idempotent on AWS for 10 minutes.
    """

    def attempt() -> None:
        with TransactWrite(
            connection=pynamodb_connection(), client_request_token=client_request_token
        ) as tw:
            build(tw)

    _with_retries(attempt)


def transact_put(puts: list[dict], *, client_request_token: str | None = None) -> None:
    """One TransactWriteItems of these puts (wire form), retrying transient cancellations
    as :func:`transact_write` does; a cancellation's reasons come in the order of ``puts``."""
    body: dict = {"TransactItems": [{"Put": put} for put in puts]}
    if client_request_token is not None:
        body["ClientRequestToken"] = client_request_token

    def attempt() -> None:
        try:
            wire_client().call("TransactWriteItems", body)
        except (BotoCoreError, ClientError) as exc:  # as PynamoDB wraps botocore's errors
            raise TransactWriteError("Failed to write transaction items", exc) from exc

    _with_retries(attempt)


def _with_retries(attempt: Callable[[], object]) -> None:
    for number in range(MAX_ATTEMPTS):
        try:
            attempt()
            return
        except TransactWriteError as exc:
            if number == MAX_ATTEMPTS - 1 or not is_retryable_transaction(exc):
                raise
            time.sleep(BASE_DELAY * 2**number * (0.5 + random.random()))
