"""API keys: who they authenticate as, what is refused, and that the raw key is kept
nowhere (database, audit trail, admin log, logs)."""

import datetime
import hashlib
import json
import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.scoping import visible_branch_ids
from api import selectors
from api.authentication import ApiKeyAuthentication
from api.models import ApiClient
from api.services import api_client_deactivate, api_client_rotate_key, api_client_update
from audit.models import AuditMessage
from refdata import cache as refdata
from tests.factories import BranchFactory, UserFactory, key_header, make_api_client

pytestmark = pytest.mark.django_db

LOANS = "/api/v1/loans/"


def _assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


def test_a_valid_key_authenticates_as_the_clients_principal():
    client, raw_key = make_api_client(name="Field app")
    request = Request(APIRequestFactory().get("/api/v1/loans/", **key_header(raw_key)))
    principal, auth = ApiKeyAuthentication().authenticate(request)
    assert auth == client
    assert principal.api_client == client
    assert principal.is_authenticated and principal.is_active and principal.is_api_client
    assert not principal.is_superuser and not principal.is_staff
    assert principal.pk is None and principal.id is None
    assert principal.username == principal.get_username() == "api:Field app"
    assert principal.has_scope("loans:read")
    assert not principal.has_scope("transactions:write")
    assert not principal.has_perm("loans.view_loanaccount")


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_the_key_is_accepted_in_either_header(client, header):
    _, raw_key = make_api_client(all_branches=True)
    value = f"Api-Key {raw_key}" if header == "HTTP_AUTHORIZATION" else raw_key
    assert client.get(LOANS, **{header: value}).status_code == 200


def test_no_credentials_is_401_asking_for_a_key(client):
    response = client.get(LOANS)
    _assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Api-Key")


def test_an_unknown_key_is_401(client):
    _, raw_key = make_api_client()
    forged = raw_key[:-4] + ("AAAA" if not raw_key.endswith("AAAA") else "BBBB")
    _assert_error(client.get(LOANS, **key_header(forged)), 401, "not_authenticated")
    unknown_prefix = "bo_live_" + "Z" * 43
    _assert_error(client.get(LOANS, **key_header(unknown_prefix)), 401, "not_authenticated")


def test_an_inactive_clients_key_is_401(client):
    api_client, raw_key = make_api_client(all_branches=True)
    assert client.get(LOANS, **key_header(raw_key)).status_code == 200
    api_client_deactivate(client_id=api_client.pk, actor=None)
    _assert_error(client.get(LOANS, **key_header(raw_key)), 401, "not_authenticated")


def test_a_rotated_key_replaces_the_old_one_at_once(client):
    api_client, old_key = make_api_client(all_branches=True)
    new_key = api_client_rotate_key(client_id=api_client.pk, actor=None)
    assert new_key != old_key
    _assert_error(client.get(LOANS, **key_header(old_key)), 401, "not_authenticated")
    assert client.get(LOANS, **key_header(new_key)).status_code == 200


def _authenticate(raw_key: str):
    request = Request(APIRequestFactory().get(LOANS, **key_header(raw_key)))
    return ApiKeyAuthentication().authenticate(request)


@pytest.mark.django_db(transaction=True)
def test_a_client_is_read_once_with_its_branches_and_forgotten_when_it_changes():
    """Authentication caches the client with its branches (api.selectors, refdata): the
    next request reads no SQL, and a committed change is seen by the next request."""
    first, second = BranchFactory(), BranchFactory()
    api_client, raw_key = make_api_client(branches=[first])
    principal, _ = _authenticate(raw_key)
    assert principal.allowed_branch_ids == {first.pk}
    with CaptureQueriesContext(connection) as queries:
        principal, auth = _authenticate(raw_key)
    assert len(queries) == 0 and auth.pk == api_client.pk
    columns = [field.attname for field in ApiClient._meta.concrete_fields]
    stored = ApiClient.objects.get(pk=api_client.pk)
    assert [getattr(auth, c) for c in columns] == [getattr(stored, c) for c in columns]
    assert auth.scopes == ["loans:read"]
    assert visible_branch_ids(principal) == {first.pk}
    api_client_update(client_id=api_client.pk, actor=None, allowed_branches=[second])
    principal, _ = _authenticate(raw_key)
    assert visible_branch_ids(principal) == {second.pk}
    api_client_update(client_id=api_client.pk, actor=None, scopes=[])
    assert _authenticate(raw_key)[0].api_client.scopes == []
    api_client_deactivate(client_id=api_client.pk, actor=None)
    with pytest.raises(AuthenticationFailed):
        _authenticate(raw_key)


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Api-Key"},
        {"HTTP_AUTHORIZATION": "Api-Key two parts"},
        {"HTTP_AUTHORIZATION": "api-key not-a-key"},
        {"HTTP_X_API_KEY": ""},
        {"HTTP_X_API_KEY": "bo_live_ has spaces"},
    ],
)
def test_a_malformed_key_header_is_401_and_never_falls_back_to_the_session(client, headers):

    client.force_login(UserFactory(is_superuser=True))
    _assert_error(client.get(LOANS, **headers), 401, "not_authenticated")


def test_last_used_is_recorded_at_most_once_a_minute(client):
    api_client, raw_key = make_api_client(all_branches=True)
    assert api_client.last_used_at is None
    client.get(LOANS, **key_header(raw_key))
    api_client.refresh_from_db()
    first = api_client.last_used_at
    assert first is not None
    client.get(LOANS, **key_header(raw_key))
    api_client.refresh_from_db()
    assert api_client.last_used_at == first
    ApiClient.objects.filter(pk=api_client.pk).update(
        last_used_at=timezone.now() - datetime.timedelta(minutes=2)
    )
    # written without signals: announced as such writes must be (refdata.cache), and seen
    # by a process that has not touched it itself within the minute
    refdata.changed(selectors.API_CLIENTS)
    selectors._last_used.clear()
    client.get(LOANS, **key_header(raw_key))
    api_client.refresh_from_db()
    assert api_client.last_used_at > first


def test_the_raw_key_is_stored_nowhere():
    api_client, raw_key = make_api_client(branches=[BranchFactory()])
    rotated = api_client_rotate_key(client_id=api_client.pk, actor=None)
    row = ApiClient.objects.filter(pk=api_client.pk).values().get()
    assert row["key_hash"] == hashlib.sha256(rotated.encode()).hexdigest()
    assert row["key_prefix"] == rotated[8:16]
    for key in (raw_key, rotated):
        assert key not in json.dumps(row, default=str)
    # the audit trail records the hash as "***", never the key or the hash
    events = json.dumps(list(AuditMessage.objects.values("payload")), default=str)
    assert "api.apiclient" in json.dumps(list(AuditMessage.objects.values("ref")))
    for secret in (raw_key, rotated, row["key_hash"]):
        assert secret not in events
    assert not LogEntry.objects.filter(change_message__contains=raw_key[8:]).exists()


def test_the_raw_key_is_never_logged(client, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")  # Django's own loggers stop at INFO
    with CaptureQueriesContext(connection):  # SQL is logged too
        api_client, raw_key = make_api_client(all_branches=True)
        client.get(LOANS, **key_header(raw_key))
        client.get(LOANS, HTTP_X_API_KEY=raw_key + "x")  # refused
        client.get(reverse("api:schema"), **key_header(raw_key))
        rotated = api_client_rotate_key(client_id=api_client.pk, actor=None)
        client.get(LOANS, **key_header(raw_key))  # the old key, refused
    assert "SELECT" in caplog.text and "key rotated" in caplog.text  # logs were captured
    for key in (raw_key, rotated):
        assert key not in caplog.text
        assert key[8:] not in caplog.text  # not even the key without its brand


def test_session_writes_need_csrf_key_writes_do_not(settings):
    """DRF's session authentication keeps Django's CSRF check; API keys are not cookies."""

    settings.ROOT_URLCONF = "api.tests.urls"
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(UserFactory(is_superuser=True))
    response = browser.post("/api/test/echo", {"amount": "1.00"}, content_type="application/json")
    body = _assert_error(response, 403, "permission_denied")
    assert "CSRF" in body["error"]["message"]
    _, raw_key = make_api_client()
    integration = Client(enforce_csrf_checks=True)
    response = integration.post(
        "/api/test/echo", {"amount": "1.00"}, content_type="application/json", **key_header(raw_key)
    )
    assert response.status_code == 200, response.content


@pytest.mark.urls("api.tests.urls")
def test_audit_events_of_a_key_request_name_the_client(client):
    branch = BranchFactory()
    _, raw_key = make_api_client(name="Core banking")
    AuditMessage.objects.all().delete()
    response = client.post(
        f"/api/test/branches/{branch.pk}/rename",
        {"name": "Renamed"},
        content_type="application/json",
        **key_header(raw_key),
    )
    assert response.status_code == 200, response.content
    event = AuditMessage.objects.get(ref=f"accounts.branch#{branch.pk}")
    assert (event.actor_id, event.actor_repr) == (None, "api:Core banking")
    assert event.changes["name"][1] == "Renamed"


def test_authenticating_outside_a_request_leaves_the_context_alone():
    from core import context

    _, raw_key = make_api_client()
    outside = context.RequestContext(request_id="outside-0001")
    token = context.bind(outside)
    try:
        request = Request(APIRequestFactory().get("/api/v1/loans/", **key_header(raw_key)))
        ApiKeyAuthentication().authenticate(request)
        assert context.current() is outside
    finally:
        context.reset(token)
