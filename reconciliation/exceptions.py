from approvals.exceptions import AlreadyDecided, MakerCannotCheck
from core.errors import ApplicationError, Conflict, NotFound, ServiceUnavailable
from core.workflow import InvalidTransition, NotAllowed

__all__ = [
    "AlreadyDecided",
    "BusinessDateOpen",
    "DepositRejected",
    "InvalidTransition",
    "LegacyExtractRejected",
    "MakerCannotCheck",
    "NotAllowed",
    "ReportNotFound",
    "StatementAlreadyImported",
    "StatementRejected",
    "StoreUnavailable",
]


class BusinessDateOpen(ApplicationError):
    code = "business_date_open"
    status = 409


class ReportNotFound(NotFound):
    code = "not_found"


class StoreUnavailable(ServiceUnavailable):
    """DynamoDB cannot be read: the figures cannot be built now."""


class DepositRejected(ApplicationError):
    code = "invalid_deposit"


class StatementRejected(ApplicationError):
    """A statement file with errors: ``errors`` lists ``(line_number, message)``; nothing
    was imported. Line 1 is the header."""

    code = "invalid_statement"

    def __init__(self, message: str, *, errors: list[tuple[int, str]]) -> None:
        super().__init__(message)
        self.errors = errors


class StatementAlreadyImported(Conflict):
    """The same file (by content) was imported for this collection account before."""

    code = "duplicate_statement"


class LegacyExtractRejected(ApplicationError):
    """The legacy system's extract cannot be read: which row and column, and why."""

    code = "legacy_extract_rejected"
    status = 422
