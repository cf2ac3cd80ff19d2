from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from core.admin.site import register_start_panel
        from core.metrics import register_collector

        from . import metrics  # noqa: F401 - connect the Celery signals
        from .db import DatabaseCollector
        from .home import JOB_PERMISSION, jobs_panel, sees_every_branch

        # Head office's start page: the daily jobs' latest runs and the outbox's backlog.
        register_start_panel(
            "jobs", jobs_panel, order=60, permission=JOB_PERMISSION, when=sees_every_branch
        )
        register_collector(DatabaseCollector())
