"""The Celery app. Tasks are thin (ids in, one service call) and idempotent: acks_late is on."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _log_as_django_does(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING (JSON lines with the request id and the
    task), as the web process does: a receiver here stops Celery from replacing the root
    logger's handlers with its own plain-text ones."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
