from celery import shared_task

from . import services
from .exceptions import RequestInFlight, StoreUnavailable


@shared_task(acks_late=True, ignore_result=True)
def payment_post_task(txn_id: str) -> str:
    """Post one payment right after ingestion (the sweep covers anything this misses)."""
    return services.payment_post_one(txn_id=txn_id)


@shared_task(acks_late=True, ignore_result=True)
def payments_post_these_task(txn_ids: list[str]) -> dict:
    """Post the payments a web process accepted together (the sweep covers what it misses)."""
    return services.payments_post_these(txn_ids=txn_ids)


@shared_task(acks_late=True, ignore_result=True)
def payments_post_due_task() -> dict:
    """The sweep: due and backed-off items, leases of dead workers."""
    return services.payments_post_due(limit=200)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=10)
def bulk_upload_import_task(self, upload_id: int) -> dict:
    """Import a bulk upload's rows (resumes where a killed run stopped: its rows replay)."""
    try:
        return services.bulk_upload_import(upload_id=upload_id)
    except (StoreUnavailable, RequestInFlight) as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc
