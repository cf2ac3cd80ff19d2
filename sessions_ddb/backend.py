"""A Django session engine on DynamoDB that keeps the contract of Django's database backend.

- ``load`` never serves an expired session and creates nothing on a miss;
- ``create`` is a conditional put (a key collision retries with a new key);
- ``save`` of a session deleted meanwhile (logout elsewhere) raises ``UpdateError``
  instead of bringing it back, which SessionMiddleware turns into SessionInterrupted.
"""

from __future__ import annotations

import contextlib

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.utils import timezone
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from .ddb_models import SessionItem


def _condition_failed(exc: PutError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


class SessionStore(SessionBase):
    def _get_item(self, session_key: str | None) -> SessionItem | None:
        if not session_key:
            return None
        try:
            item = SessionItem.get(session_key, consistent_read=True)
        except DoesNotExist:
            return None
        if item.expires_at <= timezone.now():
            return None
        return item

    def load(self) -> dict:
        item = self._get_item(self.session_key)
        if item is None:
            self._session_key = None
            return {}
        return self.decode(item.session_data)

    def exists(self, session_key: str) -> bool:
        return self._get_item(session_key) is not None

    def create(self) -> None:
        while True:
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        user_id = data.get(SESSION_KEY)
        item = SessionItem(
            self.session_key,
            session_data=self.encode(data),
            user_id=str(user_id) if user_id is not None else None,
            expires_at=self.get_expiry_date(),
            updated_at=timezone.now(),
        )
        condition = (
            SessionItem.session_key.does_not_exist()
            if must_create
            else SessionItem.session_key.exists()
        )
        try:
            item.save(condition=condition)
        except PutError as exc:
            if not _condition_failed(exc):
                raise
            raise CreateError if must_create else UpdateError from exc

    def delete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if session_key is None:
            return
        with contextlib.suppress(DeleteError):
            SessionItem(session_key).delete()

    @classmethod
    def clear_expired(cls) -> None:
        """Remove expired sessions (DynamoDB's TTL does this too, eventually)."""
        now = timezone.now()
        for item in SessionItem.scan(SessionItem.expires_at <= now):
            item.delete()
