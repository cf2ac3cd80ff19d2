"""The session engine keeps Django's session contract, on the real DynamoDB Local."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.utils import timezone

from sessions_ddb.backend import SessionStore
from sessions_ddb.ddb_models import SessionItem
from sessions_ddb.services import user_sessions_end
from tests.factories import PASSWORD, UserFactory


@pytest.fixture
def staff_user(db):
    return UserFactory(username="clerk", is_superuser=True)


def test_item_round_trips_through_dynamodb():
    expires = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    SessionItem(
        "k1", session_data="payload", user_id="42", expires_at=expires, updated_at=timezone.now()
    ).save()
    item = SessionItem.get("k1", consistent_read=True)
    assert (item.session_data, item.user_id, item.expires_at) == ("payload", "42", expires)
    assert [e.session_key for e in SessionItem.by_user.query("42")] == ["k1"]


def test_saved_session_loads_in_a_new_store():
    store = SessionStore()
    store["cart"] = [1, 2]
    store.save()
    assert SessionStore(store.session_key)["cart"] == [1, 2]
    assert SessionStore().exists(store.session_key)


def test_load_of_an_unknown_key_creates_nothing():
    store = SessionStore("doesnotexist12345678901234567890")
    assert store.load() == {}
    assert store.session_key is None
    assert SessionItem.count() == 0


def test_expired_session_is_never_served_even_if_still_stored():
    store = SessionStore()
    store["secret"] = "x"
    store.set_expiry(1)
    store.save()
    item = SessionItem.get(store.session_key)
    item.update(actions=[SessionItem.expires_at.set(timezone.now() - timedelta(seconds=5))])
    assert SessionItem.count() == 1  # still in the table, as under DynamoDB's lazy TTL
    reloaded = SessionStore(store.session_key)
    assert reloaded.load() == {}
    assert not reloaded.exists(store.session_key)


def test_create_refuses_an_existing_key():
    store = SessionStore()
    store.save()
    clash = SessionStore(store.session_key)
    with pytest.raises(CreateError):
        clash.save(must_create=True)


def test_saving_a_session_deleted_elsewhere_raises_update_error():
    store = SessionStore()
    store["a"] = 1
    store.save()
    SessionStore(store.session_key).delete()
    store["a"] = 2
    with pytest.raises(UpdateError):
        store.save()
    assert SessionItem.count() == 0


def test_clear_expired_removes_only_expired_sessions():
    live, dead = SessionStore(), SessionStore()
    live.save()
    dead.save()
    SessionItem.get(dead.session_key).update(
        actions=[SessionItem.expires_at.set(timezone.now() - timedelta(seconds=1))]
    )
    SessionStore.clear_expired()
    assert [i.session_key for i in SessionItem.scan()] == [live.session_key]


def test_login_cycles_the_session_key_and_logout_deletes_it(client, staff_user):
    client.get("/admin/login/")
    anonymous_key = client.session.session_key
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "clerk", "password": PASSWORD}
    )
    assert response.status_code == 302
    logged_in_key = client.session.session_key
    assert logged_in_key != anonymous_key
    assert not SessionStore().exists(anonymous_key)
    item = SessionItem.get(logged_in_key)
    assert item.user_id == str(staff_user.pk)
    client.post("/admin/logout/")
    assert not SessionStore().exists(logged_in_key)


def test_request_on_a_session_ended_elsewhere_is_refused_not_resurrected(client, staff_user):
    client.force_login(staff_user)
    key = client.session.session_key
    SessionStore(key).delete()
    response = client.get("/admin/")
    assert response.status_code == 302  # back to the login page
    assert "/admin/login/" in response["Location"]
    assert not SessionStore().exists(key)


def test_ending_all_sessions_of_a_user_logs_out_every_browser(
    client, staff_user, django_app_client
):
    client.force_login(staff_user)
    django_app_client.force_login(staff_user)
    assert client.get("/admin/").status_code == 200
    assert user_sessions_end(user_id=staff_user.pk) == 2
    assert client.get("/admin/").status_code == 302
    assert django_app_client.get("/admin/").status_code == 302


@pytest.fixture
def django_app_client():
    from django.test import Client

    return Client()
