from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from audit.tracking import track
        from core.metrics import register_collector
        from refdata import cache as refdata

        from . import services  # noqa: F401 - registers the reversal approval kind
        from .metrics import PostingQueueCollector
        from .refdata import LEDGER

        track("payments.LedgerSwitch")
        register_collector(PostingQueueCollector())
        refdata.register(LEDGER, "payments.LedgerSwitch")
