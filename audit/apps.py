from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from .tracking import track

        track("accounts.User", exclude=("last_login",), secret=("password",), masked=("mobile",))
        track("accounts.Region")
        track("accounts.Area")
        track("accounts.Branch")
        track("auth.Group")
