from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from accounts.signals import user_created

        from .receivers import welcome_new_user

        user_created.connect(welcome_new_user, dispatch_uid="notifications:welcome")
