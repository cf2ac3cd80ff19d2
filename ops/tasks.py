from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "celery:heartbeat"


@shared_task(acks_late=True)
def heartbeat_task() -> None:
    """Beat's proof of life: the last time a worker ran a scheduled task (idempotent)."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=None)
