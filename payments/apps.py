from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from audit.tracking import track
        from core.metrics import register_collector

        from . import services  # noqa: F401 - registers the reversal approval kind
        from .metrics import PostingQueueCollector

        track("payments.LedgerSwitch")
        register_collector(PostingQueueCollector())
