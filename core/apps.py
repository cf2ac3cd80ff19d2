from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import celery_context  # noqa: F401 - connect the Celery signals (request id in tasks)
        from .metrics import register_collector
        from .outbox import OutboxBacklogCollector

        register_collector(OutboxBacklogCollector())
