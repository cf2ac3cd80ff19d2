import logging

from celery import shared_task

from .exceptions import NotificationStoreUnavailable
from .services import notification_send, notifications_dispatch_due

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, max_retries=5)
def notification_send_task(self, notification_id: str) -> None:
    """Send one notification. Idempotent: the service claims it first, so a redelivered task
    sends nothing twice. Provider failures are retried by the service (backoff in DynamoDB,
    picked up by the dispatcher); this task retries only when DynamoDB is unreachable."""
    try:
        notification_send(notification_id=notification_id)
    except NotificationStoreUnavailable as exc:
        raise self.retry(exc=exc, countdown=min(15 * 2**self.request.retries, 600)) from exc


@shared_task(acks_late=True)
def notifications_dispatch_task() -> None:
    """Every 30 s from beat: send what is due (scheduled, backed off, or abandoned). What a
    lost after-commit step left PENDING is released by the outbox's relay."""
    outcomes = notifications_dispatch_due()
    if outcomes:
        logger.info("notifications dispatched: %s", outcomes)
