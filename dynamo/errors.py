"""Classify DynamoDB failures: "unavailable, retry later" versus everything else."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

# Error codes AWS answers when it is overloaded or a transaction collided; worth a retry.
RETRYABLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
}
# Reasons inside a cancelled transaction that are worth a retry.
RETRYABLE_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "cause", None)


def is_unavailable(exc: BaseException) -> bool:
    """The store could not be reached or refused for load: the operation may be retried."""
    for err in _chain(exc):
        if isinstance(err, BotoConnectionError | HTTPClientError):
            return True
        if isinstance(err, ClientError):
            return err.response.get("Error", {}).get("Code") in RETRYABLE_CODES
    return False


def cancellation_codes(exc: BaseException) -> list[str | None]:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [reason.code if reason else None for reason in reasons]


def is_retryable_transaction(exc: BaseException) -> bool:
    codes = {code for code in cancellation_codes(exc) if code and code != "None"}
    if codes and codes <= RETRYABLE_REASONS:
        return True
    return not codes and is_unavailable(exc)
