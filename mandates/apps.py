from django.apps import AppConfig


class MandatesConfig(AppConfig):
    name = "mandates"
    verbose_name = "Mandates"

    def ready(self) -> None:
        from audit.tracking import track
        from core import outbox
        from refdata import cache as refdata

        from . import (  # noqa: F401 - register the approval kinds and the inbox source
            selectors,
            services,
        )
        from .models import RESULT_TOPIC
        from .refdata import RETURN_CODES

        refdata.register(RETURN_CODES, "mandates.ReturnCodePolicy")
        # A result's DynamoDB side: synced by the process that applied it, right after the
        # commit (execution_result_apply also does it itself); by the relay when that failed.
        outbox.register(RESULT_TOPIC, services.execution_result_deliver, inline=True)

        # Status changes are recorded (history and audit) by core.workflow.transition.
        track(
            "mandates.Mandate",
            masked=("account_number",),
            exclude=("status", "status_changed_at", "maker", "checker"),
        )
        track("mandates.BankHoliday")
        track("mandates.ReturnCodePolicy")
        track("mandates.SandboxBounceRule", masked=("account_number",))
