"""TransactWriteItems with the retries PynamoDB does not do.

PynamoDB does not retry a cancelled transaction; AWS cancels one on a conflict with
another transaction or on throttling. Those are retried here with exponential backoff
and jitter; a cancellation by a failed condition is the caller's business and raised.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from .connection import pynamodb_connection
from .errors import is_retryable_transaction

MAX_ATTEMPTS = 6
BASE_DELAY = 0.05


def transact_write(
    build: Callable[[TransactWrite], None], *, client_request_token: str | None = None
) -> None:
    """Run ``build(tw)`` inside a TransactWrite, retrying transient cancellations.

    A ``client_request_token`` makes a retried call idempotent on AWS for 10 minutes.
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            with TransactWrite(
                connection=pynamodb_connection(), client_request_token=client_request_token
            ) as tw:
                build(tw)
            return
        except TransactWriteError as exc:
            if attempt == MAX_ATTEMPTS - 1 or not is_retryable_transaction(exc):
                raise
            time.sleep(BASE_DELAY * 2**attempt * (0.5 + random.random()))
