"""Payments: idempotent ingestion into DynamoDB, exactly-once posting to the loan ledger,
reversal through maker-checker, bulk repayment files. One module a seam: ingest, posting,
reversal, bulk; the ledger's side of posting in ledger.
"""

from ._common import MODES, POSTING, QueueStatus, TxnStatus, business_date_for
from .bulk import (
    bulk_import_held,
    bulk_upload_import,
    bulk_upload_import_start,
    bulk_upload_preview,
)
from .ingest import (
    IngestResult,
    PaymentInput,
    ingest_outcome,
    payment_ingest,
    transaction_body,
    transaction_get,
)
from .ledger import ledger_post, ledger_post_many, ledger_switch_problems, ledger_switch_set
from .migration import (
    MIGRATED,
    MIGRATED_MODE,
    HistoricalPayment,
    OpeningBalanceRefused,
    loan_opening_balance_post,
    opening_txn_id,
    payment_history_record,
)
from .posting import (
    POSTING_BATCH,
    POSTING_LEASE,
    payment_post_one,
    payments_post_due,
    payments_post_these,
    queue_claim_due,
    queue_item_process,
    queue_item_retry,
    queue_items_process,
)
from .reversal import (
    payment_reversal_deliver,
    payment_reversal_request,
    payment_reversal_sync,
    payment_reverse,
)

__all__ = [
    "MIGRATED",
    "MIGRATED_MODE",
    "MODES",
    "POSTING",
    "POSTING_BATCH",
    "POSTING_LEASE",
    "HistoricalPayment",
    "IngestResult",
    "OpeningBalanceRefused",
    "PaymentInput",
    "QueueStatus",
    "TxnStatus",
    "bulk_import_held",
    "bulk_upload_import",
    "bulk_upload_import_start",
    "bulk_upload_preview",
    "business_date_for",
    "ingest_outcome",
    "ledger_post",
    "ledger_post_many",
    "ledger_switch_problems",
    "ledger_switch_set",
    "loan_opening_balance_post",
    "opening_txn_id",
    "payment_history_record",
    "payment_ingest",
    "payment_post_one",
    "payment_reversal_deliver",
    "payment_reversal_request",
    "payment_reversal_sync",
    "payment_reverse",
    "payments_post_due",
    "payments_post_these",
    "queue_claim_due",
    "queue_item_process",
    "queue_item_retry",
    "queue_items_process",
    "transaction_body",
    "transaction_get",
]
