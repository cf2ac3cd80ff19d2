from __future__ import annotations

from .backend import forget
from .ddb_models import SessionItem


def user_sessions_end(*, user_id: int) -> int:
    """End every session of a user (all browsers, all devices). Returns how many ended."""
    ended = 0
    for entry in SessionItem.by_user.query(str(user_id)):
        forget(entry.session_key)
        SessionItem(entry.session_key).delete()
        ended += 1
    return ended
