from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from audit.tracking import track

        from . import services  # noqa: F401 - registers the reversal approval kind

        track("payments.LedgerSwitch")
