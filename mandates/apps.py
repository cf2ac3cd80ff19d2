from django.apps import AppConfig


class MandatesConfig(AppConfig):
    name = "mandates"
    verbose_name = "Mandates"

    def ready(self) -> None:
        from approvals.models import ApprovalRequest
        from approvals.selectors import (
            register_inbox_source,
            register_request_detail,
            register_returned_source,
        )
        from approvals.services import register_kind
        from audit.tracking import track
        from core import outbox
        from loans.panels import register_customer_panel
        from refdata import cache as refdata

        from .models import RESULT_TOPIC
        from .refdata import RETURN_CODES
        from .selectors import (
            customer_mandates_panel,
            mandate_inbox_count,
            mandate_inbox_entries,
            mandates_returned_to,
            stop_request_detail,
        )
        from .services import execution_result_deliver
        from .services.lifecycle import APPROVAL_KINDS

        for kind, handler in APPROVAL_KINDS.items():
            register_kind(kind, handler)
        register_inbox_source("mandates", mandate_inbox_entries, count=mandate_inbox_count)
        register_returned_source("mandates", mandates_returned_to)  # My requests
        register_request_detail(ApprovalRequest.Kind.MANDATE_SUSPENSION, stop_request_detail)
        register_request_detail(ApprovalRequest.Kind.MANDATE_CANCELLATION, stop_request_detail)
        refdata.register(RETURN_CODES, "mandates.ReturnCodePolicy")
        register_customer_panel("mandates", customer_mandates_panel, order=30)
        # A result's DynamoDB side: synced by the process that applied it, right after the
        # commit (execution_result_apply also does it itself); by the relay when that failed.
        outbox.register(RESULT_TOPIC, execution_result_deliver, inline=True)

        # Status changes are recorded (history and audit) by core.workflow.transition.
        track(
            "mandates.Mandate",
            masked=("account_number",),
            exclude=("status", "status_changed_at", "maker", "checker"),
        )
        track("mandates.BankHoliday")
        track("mandates.ReturnCodePolicy")
        track("mandates.SandboxBounceRule", masked=("account_number",))
