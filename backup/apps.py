from django.apps import AppConfig


class BackupConfig(AppConfig):
    """backup_create / backup_restore: the Postgres dump and every DynamoDB table as one
    verified archive (tooling, not the product's domain)."""

    name = "backup"
    verbose_name = "Backup"

    def ready(self) -> None:
        from core.metrics import register_collector

        from .schedule import BackupCollector

        register_collector(BackupCollector())
