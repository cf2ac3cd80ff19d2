from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from accounts.signals import user_created
        from core import outbox

        from .models import RELEASE_TOPIC
        from .receivers import welcome_new_user
        from .services import notification_release_deliver

        user_created.connect(welcome_new_user, dispatch_uid="notifications:welcome")
        # Released in the committing process right after the commit; by the relay when lost.
        outbox.register(RELEASE_TOPIC, notification_release_deliver, inline=True)
