from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Reconciliation"

    def ready(self) -> None:
        from approvals.selectors import register_inbox_source, register_returned_source
        from audit.tracking import track
        from core.admin.site import register_start_panel

        from . import home, selectors

        register_inbox_source("dcr", selectors.dcr_inbox_entries, count=selectors.dcr_inbox_count)
        register_inbox_source("dbs", selectors.dbs_inbox_entries, count=selectors.dbs_inbox_count)
        register_returned_source("dcr_dbs", selectors.returned_to)  # My requests
        # The start page: today at the user's branches; the dashboard's headline figures.
        register_start_panel(
            "today",
            home.today_panel,
            order=20,
            permission="reconciliation.view_dcr",
            when=home.works_at_branches,
        )
        register_start_panel(
            "dashboard",
            home.dashboard_panel,
            order=40,
            permission="reconciliation.view_dcr",
            when=home.oversees_branches,
        )

        # What people enter is tracked; DCR and DBS figures are computed (re-running gives
        # the same), so their events are the workflow transitions (core.workflow) instead.
        track("reconciliation.Deposit")
        track("reconciliation.StatementUpload")
