from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def payment_post_task(txn_id: str) -> str:
    """Post one payment right after ingestion (the sweep covers anything this misses)."""
    return services.payment_post_one(txn_id=txn_id)


@shared_task(acks_late=True, ignore_result=True)
def payments_post_due_task() -> dict:
    """The sweep: due and backed-off items, leases of dead workers."""
    return services.payments_post_due(limit=200)
