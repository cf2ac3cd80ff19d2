"""What notifications does when other apps announce something (connected in
``NotificationsConfig.ready()``)."""

from __future__ import annotations

from .services import welcome_notification_queue


def welcome_new_user(sender, *, user, **kwargs) -> None:
    """``accounts.signals.user_created``: the new member of staff gets the welcome."""
    welcome_notification_queue(user=user)
