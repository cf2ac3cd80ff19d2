"""A Django session engine on DynamoDB that keeps the contract of Django's database backend.

- ``load`` never serves an expired session and creates nothing on a miss;
- ``create`` is a conditional put (a key collision retries with a new key);
- ``save`` of a session deleted meanwhile (logout elsewhere) raises ``UpdateError``
  instead of bringing it back, which SessionMiddleware turns into SessionInterrupted.

Reads go through a Redis cache in front of DynamoDB (as Django's ``cached_db`` does for
the database backend): an admin page would otherwise pay a DynamoDB round trip on every
request. DynamoDB stays the store of record, and the cache never outlives it:

- a cache entry carries the session's expiry and is kept at most
  ``SESSIONS_DDB_CACHE_SECONDS`` (default 300), never past the expiry;
- ``save`` writes DynamoDB (conditionally) and then drops the cache entry, so the next
  read refills it from the store;
- ``delete`` (logout, ending all sessions of a user) writes a tombstone to the cache, and
  a refill only ever *adds* an entry, so a read that raced with the delete cannot put the
  deleted session back into the cache;
- a Redis outage falls back to DynamoDB (logged), it never fails a request.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.cache import caches
from django.utils import timezone
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from .ddb_models import SessionItem

logger = logging.getLogger(__name__)

CACHE_PREFIX = "sessions_ddb:"
TOMBSTONE = "deleted"


def _cache():
    return caches[settings.SESSION_CACHE_ALIAS]


def _cache_seconds() -> int:
    return settings.SESSIONS_DDB_CACHE_SECONDS


def _cache_call(method: str, *args, **kwargs):
    """Call the cache; an unreachable Redis is logged and reads as a miss."""
    try:
        return getattr(_cache(), method)(*args, **kwargs)
    except Exception as exc:  # any cache failure falls back to DynamoDB
        logger.warning("session cache unavailable (%s): %s", method, type(exc).__name__)
        return None


def forget(session_key: str) -> None:
    """Mark a session as gone in the cache (before or after deleting it from DynamoDB)."""
    _cache_call("set", CACHE_PREFIX + session_key, TOMBSTONE, _cache_seconds())


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

    def _get_data(self, session_key: str | None) -> str | None:
        """The encoded data of a live session, from the cache or else from DynamoDB."""
        if not session_key:
            return None
        cached = _cache_call("get", CACHE_PREFIX + session_key)
        if cached == TOMBSTONE:
            return None
        now = timezone.now()
        if cached is not None:
            data, expires_at = cached
            if datetime.fromisoformat(expires_at) > now:
                return data
            return None
        item = self._get_item(session_key)
        if item is None:
            return None
        seconds = min(_cache_seconds(), int((item.expires_at - now).total_seconds()))
        if seconds > 0:
            entry = (item.session_data, item.expires_at.isoformat())
            _cache_call("add", CACHE_PREFIX + session_key, entry, seconds)
        return item.session_data

    def load(self) -> dict:
        data = self._get_data(self.session_key)
        if data is None:
            self._session_key = None
            return {}
        return self.decode(data)

    def exists(self, session_key: str) -> bool:
        return self._get_data(session_key) is not None

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
        if not must_create:
            _cache_call("delete", CACHE_PREFIX + self.session_key)

    def delete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if session_key is None:
            return
        forget(session_key)
        with contextlib.suppress(DeleteError):
            SessionItem(session_key).delete()

    @classmethod
    def clear_expired(cls) -> None:
        """Remove expired sessions (DynamoDB's TTL does this too, eventually)."""
        now = timezone.now()
        for item in SessionItem.scan(SessionItem.expires_at <= now):
            item.delete()
