from celery import shared_task

from . import services
from .exceptions import StoreUnavailable


@shared_task(acks_late=True, ignore_result=True)
def payment_post_task(txn_id: str) -> str:
    """Post one payment right after ingestion (the sweep covers anything this misses)."""
    return services.payment_post_one(txn_id=txn_id)


@shared_task(acks_late=True, ignore_result=True)
def payments_post_due_task() -> dict:
    """The sweep: due and backed-off items, leases of dead workers, reversal syncs."""
    outcomes = services.payments_post_due(limit=200)
    outcomes["reversals_synced"] = services.payment_reversals_sync_pending()
    return outcomes


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=10)
def payment_reversal_sync_task(self, txn_id: str) -> None:
    try:
        services.payment_reversal_sync(txn_id=txn_id)
    except StoreUnavailable as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc
