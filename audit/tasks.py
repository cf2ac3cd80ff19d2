import logging

from celery import shared_task

from .exceptions import AuditStoreUnavailable
from .services import audit_outbox_purge, audit_relay_pending

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def audit_relay_task() -> int:
    """Relay pending audit events to DynamoDB. Beat runs it every 10 seconds and outbox
    writes enqueue it after commit; concurrent or redelivered runs are harmless (rows are
    claimed with SKIP LOCKED, puts are conditional). No retries of its own: while DynamoDB
    is down the rows wait for the next run."""
    try:
        return audit_relay_pending()
    except AuditStoreUnavailable as exc:
        logger.warning("%s", exc)
        return 0


@shared_task(acks_late=True, ignore_result=True)
def audit_outbox_purge_task() -> int:
    """Delete outbox rows relayed longer ago than ``AUDIT_OUTBOX_RETENTION_DAYS``. Beat runs
    it daily; a second or redelivered run finds nothing more to delete."""
    return audit_outbox_purge()
