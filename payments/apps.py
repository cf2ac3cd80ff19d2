from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from approvals.models import ApprovalRequest
        from approvals.selectors import register_request_detail
        from approvals.services import register_kind
        from audit.tracking import track
        from core import outbox
        from core.admin.site import register_page_banner, register_start_panel
        from core.metrics import register_collector
        from loans.panels import register_customer_panel
        from refdata import cache as refdata

        from .home import (
            RETRY_PERMISSION,
            ledger_maintenance_banner,
            queue_panel,
            sees_every_branch,
        )
        from .metrics import PostingQueueCollector
        from .models import REVERSAL_TOPIC
        from .refdata import LEDGER
        from .selectors import customer_receipts_panel, reversal_request_detail
        from .services.reversal import APPROVAL_KINDS, payment_reversal_deliver

        for kind, handler in APPROVAL_KINDS.items():
            register_kind(kind, handler)
        register_request_detail(ApprovalRequest.Kind.PAYMENT_REVERSAL, reversal_request_detail)
        register_customer_panel("receipts", customer_receipts_panel, order=40)
        track("payments.LedgerSwitch")
        register_collector(PostingQueueCollector())
        refdata.register(LEDGER, "payments.LedgerSwitch")
        register_page_banner(ledger_maintenance_banner)  # every page, while in maintenance
        register_start_panel(
            "posting_queue",
            queue_panel,
            order=50,
            permission=RETRY_PERMISSION,
            when=sees_every_branch,
        )
        # A reversal marks DynamoDB's transaction REVERSED after commit, by the relay.
        outbox.register(REVERSAL_TOPIC, payment_reversal_deliver)
