from core.errors import ApplicationError, Conflict, NotFound, ServiceUnavailable


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


class DuplicatePayment(Conflict):
    """A value only one payment may carry is already taken by ``txn_id`` (409). Nothing of
    the refused payment is stored and its Idempotency-Key stays free."""

    def __init__(self, message: str, *, txn_id: str, field: str) -> None:
        super().__init__(message, field=field, details={"txn_id": txn_id})
        self.txn_id = txn_id


class DuplicateReceipt(DuplicatePayment):
    code = "duplicate_receipt"


class DuplicateReference(DuplicatePayment):
    code = "duplicate_external_reference"


class StoreUnavailable(ServiceUnavailable):
    code = "store_unavailable"


class LedgerSwitchRefused(ApplicationError):
    """The maintenance switch cannot be set so (a switch without its reason)."""

    code = "reason_required"


class LedgerUnavailable(ApplicationError):
    """The ledger cannot post now (maintenance or database down): try again later."""

    code = "ledger_unavailable"
    status = 503


class PostingRefused(ApplicationError):
    """The payment can never be posted (the loan is closed): it ends FAILED."""

    code = "posting_refused"
    status = 422


class BulkFileRejected(ApplicationError):
    """A bulk repayment file that cannot be read as a whole: nothing of it is stored."""

    code = "bulk_file_rejected"
    status = 422


class BulkImportRefused(ApplicationError):
    """The upload cannot be imported now (done already, nothing valid, being imported)."""

    code = "bulk_import_refused"
    status = 409
