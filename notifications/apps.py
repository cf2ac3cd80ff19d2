from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from core import outbox

        from .models import RELEASE_TOPIC
        from .services import notification_release_deliver

        # Released in the committing process right after the commit; by the relay when lost.
        outbox.register(RELEASE_TOPIC, notification_release_deliver, inline=True)
