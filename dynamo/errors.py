"""Classify DynamoDB failures: "unavailable, retry later" versus everything else."""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from prometheus_client import Counter

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
# For /metrics: what kind of error each code or reason is.
THROTTLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
}
CONFLICT_CODES = {
    "TransactionConflictException",
    "TransactionInProgressException",
    "TransactionConflict",
}
# A failed condition is the store's answer to a conditional write, not an error.
CONDITION_CODES = {"ConditionalCheckFailedException", "ConditionalCheckFailed"}


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "cause", None)


def error_kind(exc: BaseException) -> str | None:
    """throttle, conflict, unavailable or error; None for a failed condition or an
    exception that is no DynamoDB error."""
    codes = {code for code in cancellation_codes(exc) if code and code != "None"}
    codes -= CONDITION_CODES
    if not codes and cancellation_codes(exc):
        return None
    for code in codes:
        if code in THROTTLE_CODES:
            return "throttle"
    if codes:
        return "conflict" if codes & CONFLICT_CODES else "error"
    for err in _chain(exc):
        if isinstance(err, BotoConnectionError | HTTPClientError):
            return "unavailable"
        if isinstance(err, ClientError):
            code = err.response.get("Error", {}).get("Code")
            if code in CONDITION_CODES:
                return None
            if code in THROTTLE_CODES:
                return "throttle"
            if code in CONFLICT_CODES:
                return "conflict"
            return "unavailable" if code in RETRYABLE_CODES else "error"
    return None


# The DynamoDB layer counts its own errors (ops.metrics exposes every counter of the process).
DYNAMODB_ERRORS = Counter(
    "backoffice_dynamodb_errors",
    "DynamoDB errors the application handled, by kind: throttle, conflict (a transaction "
    "collided), unavailable (unreachable or a server error), error (anything else).",
    ["kind"],
)


def count_error(exc: BaseException, kind: str) -> None:
    """Count one handled DynamoDB error, once however often it is classified."""
    if getattr(exc, "_backoffice_counted", False):
        return
    exc._backoffice_counted = True
    DYNAMODB_ERRORS.labels(kind).inc()


def _count(exc: BaseException) -> None:
    """Every DynamoDB error the application handles passes through the two classifiers
    below; each is counted there once for /metrics."""
    kind = error_kind(exc)
    if kind is not None:
        count_error(exc, kind)


def is_unavailable(exc: BaseException) -> bool:
    """The store could not be reached or refused for load: the operation may be retried."""
    _count(exc)
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
    _count(exc)
    codes = {code for code in cancellation_codes(exc) if code and code != "None"}
    if codes and codes <= RETRYABLE_REASONS:
        return True
    return not codes and is_unavailable(exc)
