from __future__ import annotations

from django.db import transaction

from .models import User


def user_created(*, user: User) -> None:
    """Side effects of a new member of staff: the welcome notification, after commit."""
    from notifications.services import welcome_notification_queue

    transaction.on_commit(lambda: welcome_notification_queue(user=user))
