from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from accounts.admin_base import register_history_view
        from core import outbox
        from core.workflow import transitioned

        from .admin import object_history_view
        from .models import AUDIT_TOPIC
        from .services import audit_events_deliver, audit_transition
        from .tracking import track

        # Every workflow move (core.workflow.transition) writes its audit event to the outbox.
        transitioned.connect(audit_transition, dispatch_uid="audit:transition")
        # The relay copies them to DynamoDB in batches (one conditional put each).
        outbox.register(AUDIT_TOPIC, audit_events_deliver, batch=True)
        # The History page of every scoped admin is the object's audit trail.
        register_history_view(object_history_view)

        track("accounts.User", exclude=("last_login",), secret=("password",), masked=("mobile",))
        track("accounts.Region")
        track("accounts.Area")
        track("accounts.Branch")
        track("auth.Group")
