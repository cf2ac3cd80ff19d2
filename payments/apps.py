from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from audit.tracking import track
        from core import outbox
        from core.metrics import register_collector
        from refdata import cache as refdata

        from . import services  # also registers the reversal approval kind
        from .metrics import PostingQueueCollector
        from .models import REVERSAL_TOPIC
        from .refdata import LEDGER

        track("payments.LedgerSwitch")
        register_collector(PostingQueueCollector())
        refdata.register(LEDGER, "payments.LedgerSwitch")
        # A reversal marks DynamoDB's transaction REVERSED after commit, by the relay.
        outbox.register(REVERSAL_TOPIC, services.payment_reversal_deliver)
