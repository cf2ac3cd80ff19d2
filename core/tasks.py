from celery import shared_task

from .outbox import outbox_purge, outbox_relay


@shared_task(acks_late=True, ignore_result=True)
def outbox_relay_task() -> int:
    """Deliver the due outbox messages of every topic. Beat runs it every 10 seconds and a
    commit that wrote messages enqueues it; concurrent or redelivered runs are harmless
    (messages are claimed with SKIP LOCKED, handlers are idempotent). No retries of its own:
    a failed message waits for its backoff and a later run."""
    return sum(outbox_relay().values())


@shared_task(acks_late=True, ignore_result=True)
def outbox_purge_task() -> int:
    """Delete messages delivered longer ago than ``OUTBOX_RETENTION_DAYS``. Beat runs it
    daily; a second or redelivered run finds nothing more to delete."""
    return outbox_purge()
