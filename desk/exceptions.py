from core.errors import ApplicationError, NotFound


class CollectRefused(ApplicationError):
    """The payment cannot be collected as entered (422); ``field`` names the form field."""

    code = "collect_refused"
    status = 422


class CashLimitExceeded(CollectRefused):
    code = "cash_limit_exceeded"


class DuplicateNotConfirmed(CollectRefused):
    """The same amount came in on the loan within the last minutes: say it is not a repeat."""

    code = "duplicate_not_confirmed"


class ReceiptNotFound(NotFound):
    code = "receipt_not_found"
