from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Reconciliation"

    def ready(self) -> None:
        from approvals.selectors import register_inbox_source
        from audit.tracking import track

        from . import selectors

        register_inbox_source("dcr", selectors.dcr_inbox_entries, count=selectors.dcr_inbox_count)
        register_inbox_source("dbs", selectors.dbs_inbox_entries, count=selectors.dbs_inbox_count)

        # What people enter is tracked; DCR and DBS figures are computed (re-running gives
        # the same), so their events are the workflow transitions (core.workflow) instead.
        track("reconciliation.Deposit")
        track("reconciliation.StatementUpload")
