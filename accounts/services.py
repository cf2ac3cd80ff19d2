from __future__ import annotations

from django.db import transaction

from .models import User


@transaction.atomic
def user_create(*, actor: User | None, **fields) -> User:
    """A new member of staff, from the fields the admin's add form validated (``password``
    is the hash it made, or an unusable one), welcomed after commit. The row is audited by
    the change tracking; groups are set by the caller (the form's many-to-many save)."""
    from notifications.services import welcome_notification_queue

    user = User(**fields)
    user.save()
    transaction.on_commit(lambda: welcome_notification_queue(user=user))
    return user
