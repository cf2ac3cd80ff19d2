from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Reconciliation"

    def ready(self) -> None:
        from audit.tracking import track

        from . import selectors  # noqa: F401 - registers the DCR and DBS approvals inbox sources

        # What people enter is tracked; DCR and DBS figures are computed (re-running gives
        # the same), so their events are the workflow transitions (core.workflow) instead.
        track("reconciliation.Deposit")
        track("reconciliation.StatementUpload")
