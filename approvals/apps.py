from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from audit.tracking import track

        # The decision is recorded once, as a transition event, by approval_decide.
        track(
            "approvals.ApprovalRequest",
            exclude=("payload", "status", "checker", "decided_at", "remarks"),
        )
