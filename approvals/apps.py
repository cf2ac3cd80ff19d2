from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from audit.tracking import track
        from core.admin.site import register_header_link, register_start_panel

        from .admin import inbox_header_link
        from .home import VIEW_PERMISSION, inbox_panel

        register_header_link(inbox_header_link)  # "Approvals (n)" in the admin's header
        # The start page of those who decide: the inbox's count and first entries.
        register_start_panel("inbox", inbox_panel, order=30, permission=VIEW_PERMISSION)

        from .selectors import (
            approval_request_inbox_count,
            approval_request_inbox_entries,
            register_inbox_source,
        )

        register_inbox_source(
            "approval_requests", approval_request_inbox_entries, count=approval_request_inbox_count
        )

        # The decision is recorded once, as a transition event, by approval_decide.
        track(
            "approvals.ApprovalRequest",
            exclude=("payload", "status", "checker", "decided_at", "remarks"),
        )
