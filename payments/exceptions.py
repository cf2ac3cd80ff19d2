from ops.errors import ApplicationError, Conflict, NotFound, ServiceUnavailable


class PaymentRejected(ApplicationError):
    """The payment cannot be accepted as sent (422)."""

    code = "payment_rejected"
    status = 422


class LoanNotFound(NotFound):
    code = "loan_not_found"


class TransactionNotFound(NotFound):
    code = "transaction_not_found"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class RequestInFlight(Conflict):
    code = "request_in_flight"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "2"})


class StoreUnavailable(ServiceUnavailable):
    code = "store_unavailable"


class LedgerUnavailable(ApplicationError):
    """The ledger cannot post now (maintenance or database down): try again later."""

    code = "ledger_unavailable"
    status = 503


class PostingRefused(ApplicationError):
    """The payment can never be posted (the loan is closed): it ends FAILED."""

    code = "posting_refused"
    status = 422
