"""The Redis cache in front of the DynamoDB sessions: faster reads, never a stale login.

What a cache hit looks like from outside: the item is removed from DynamoDB behind the
engine's back, and the session still loads. Everything else checks that the cache never
serves what the engine has deleted, changed or let expire.
"""

import time

import pytest
from django.core.cache import cache
from django.test import override_settings

from sessions_ddb.backend import CACHE_PREFIX, TOMBSTONE, SessionStore
from sessions_ddb.ddb_models import SessionItem
from sessions_ddb.services import user_sessions_end


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _saved(**data) -> SessionStore:
    store = SessionStore()
    store.update(data)
    store.save()
    return store


def test_a_loaded_session_is_served_from_the_cache_afterwards():
    store = _saved(cart=[1, 2])
    assert SessionStore(store.session_key)["cart"] == [1, 2]  # read from DynamoDB, cached
    SessionItem(store.session_key).delete()  # behind the engine's back
    assert SessionStore(store.session_key)["cart"] == [1, 2]


def test_a_session_deleted_through_the_engine_is_not_served_from_the_cache():
    store = _saved(user="clerk")
    assert SessionStore(store.session_key)["user"] == "clerk"  # now cached
    SessionStore(store.session_key).delete()  # logout in another browser
    reloaded = SessionStore(store.session_key)
    assert reloaded.load() == {}
    assert reloaded.session_key is None
    assert cache.get(CACHE_PREFIX + store.session_key) == TOMBSTONE


def test_ending_all_sessions_of_a_user_also_ends_their_cached_copies():
    store = SessionStore()
    store["_auth_user_id"] = "77"
    store.save()
    assert SessionStore(store.session_key).exists(store.session_key)  # cached
    assert user_sessions_end(user_id=77) == 1
    assert not SessionStore().exists(store.session_key)


def test_a_read_racing_with_a_delete_cannot_put_the_session_back_into_the_cache():
    store = _saved(user="clerk")
    key = store.session_key

    class ReaderDeletedMeanwhile(SessionStore):
        def _get_item(self, session_key):
            item = super()._get_item(session_key)  # read before the delete ...
            SessionStore(session_key).delete()  # ... which lands before the refill
            return item

    ReaderDeletedMeanwhile(key).load()
    assert cache.get(CACHE_PREFIX + key) == TOMBSTONE
    assert SessionStore(key).load() == {}


def test_saving_drops_the_cached_copy_so_the_next_read_sees_the_change():
    store = _saved(step=1)
    assert SessionStore(store.session_key)["step"] == 1  # cached
    store["step"] = 2
    store.save()
    assert SessionStore(store.session_key)["step"] == 2


def test_a_cached_session_is_not_served_past_its_expiry():
    store = SessionStore()
    store["a"] = 1
    store.set_expiry(2)
    store.save()
    assert SessionStore(store.session_key)["a"] == 1  # cached, with its expiry
    time.sleep(2.2)
    assert SessionStore(store.session_key).load() == {}


@override_settings(
    CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there: a real outage
        },
    },
    SESSION_CACHE_ALIAS="down",
)
def test_sessions_work_from_dynamodb_while_redis_is_down(caplog):
    store = _saved(cart=[3])
    assert SessionStore(store.session_key)["cart"] == [3]
    SessionStore(store.session_key).delete()
    assert SessionStore(store.session_key).load() == {}
    assert "session cache unavailable" in caplog.text


def test_no_cache_seconds_means_every_read_goes_to_dynamodb(settings):
    settings.SESSIONS_DDB_CACHE_SECONDS = 0
    store = _saved(cart=[1, 2])
    assert SessionStore(store.session_key)["cart"] == [1, 2]  # read from DynamoDB, not cached
    SessionItem(store.session_key).delete()  # behind the engine's back
    assert SessionStore(store.session_key).load() == {}
