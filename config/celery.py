"""The Celery app. Tasks are thin (ids in, one service call) and idempotent: acks_late is on."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Tasks whose backlog may wait: they go to the background queue (settings.BACKGROUND_QUEUE).
# The outbox's relay is one of them: what it delivers is committed in Postgres already.
BACKGROUND_TASKS = ("notifications.", "core.tasks.outbox_", "backup.")


def route_task(name, args, kwargs, options, task=None, **kw):
    """The router (CELERY_TASK_ROUTES): notifications and the outbox relay to the background
    queue, everything else to the default queue."""
    if name.startswith(BACKGROUND_TASKS):
        from django.conf import settings

        return {"queue": settings.BACKGROUND_QUEUE}
    return None


@signals.setup_logging.connect
def _log_as_django_does(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING (JSON lines with the request id and the
    task), as the web process does: a receiver here stops Celery from replacing the root
    logger's handlers with its own plain-text ones."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
