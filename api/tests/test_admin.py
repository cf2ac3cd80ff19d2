"""The admin creates, changes and rotates keys through the services and shows each raw key
once."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse

from api.models import ApiClient
from api.services import api_client_update
from audit.models import AuditMessage
from tests.factories import BranchFactory, UserFactory, key_header, make_api_client

pytestmark = pytest.mark.django_db

KEY = re.compile(r"bo_live_[A-Za-z0-9_-]{40,}")


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_superuser=True))
    return client


def _texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_creating_a_client_shows_its_key_once(admin_client, client):
    branch = BranchFactory()
    response = admin_client.post(
        reverse("admin:api_apiclient_add"),
        {
            "name": "Field collection app",
            "kind": "INTEGRATION",
            "scopes": ["transactions:write", "loans:read"],
            "allowed_branches": [branch.pk],
        },
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    keys = set(KEY.findall(html))
    assert len(keys) == 1
    (raw_key,) = keys
    assert "Copy it now: it is not shown again" in html
    created = ApiClient.objects.get(name="Field collection app")
    assert created.scopes == ["loans:read", "transactions:write"]
    assert list(created.allowed_branches.all()) == [branch]
    assert created.key_prefix == raw_key[8:16]
    assert raw_key not in str(ApiClient.objects.filter(pk=created.pk).values().get())
    # the key works...
    assert client.get("/api/v1/loans/", **key_header(raw_key)).status_code == 200
    # ...and is never shown again, nor its hash
    for url in (
        reverse("admin:api_apiclient_changelist"),
        reverse("admin:api_apiclient_change", args=[created.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert raw_key not in page and raw_key[8:] not in page
        assert created.key_hash not in page
        assert created.key_prefix in page
    assert not any(raw_key in e.change_message for e in LogEntry.objects.all())
    assert LogEntry.objects.filter(object_id=str(created.pk)).exists()


def test_all_branches_and_a_list_of_branches_are_exclusive(admin_client):
    response = admin_client.post(
        reverse("admin:api_apiclient_add"),
        {
            "name": "HO",
            "kind": "INTEGRATION",
            "all_branches": "on",
            "allowed_branches": [BranchFactory().pk],
        },
    )
    assert response.status_code == 200
    assert "needs no list of branches" in response.content.decode()
    assert not ApiClient.objects.filter(name="HO").exists()


def test_a_partner_client_needs_its_partner(admin_client):
    response = admin_client.post(
        reverse("admin:api_apiclient_add"),
        {"name": "Bank", "kind": "BANKING_PARTNER", "scopes": ["partner:results"]},
    )
    assert response.status_code == 200
    assert "Choose the banking partner" in response.content.decode()


def test_the_message_with_a_new_key_travels_in_no_cookie(admin_client):
    response = admin_client.post(
        reverse("admin:api_apiclient_add"),
        {"name": "Portal", "kind": "INTEGRATION", "scopes": ["loans:read"], "all_branches": "on"},
    )
    assert response.status_code == 302
    assert "messages" not in response.cookies  # the default storage would put it there
    follow = admin_client.get(response["Location"])
    (raw_key,) = set(KEY.findall(follow.content.decode()))
    assert all(raw_key not in morsel.value for morsel in follow.cookies.values())


def test_the_rotate_action_shows_the_new_key_once_and_retires_the_old(admin_client, client):
    api_client, old_key = make_api_client(all_branches=True)
    response = admin_client.post(
        reverse("admin:api_apiclient_changelist"),
        {"action": "rotate_key", "_selected_action": [api_client.pk]},
        follow=True,
    )
    (new_key,) = set(KEY.findall(response.content.decode()))
    assert new_key != old_key
    assert client.get("/api/v1/loans/", **key_header(old_key)).status_code == 401
    assert client.get("/api/v1/loans/", **key_header(new_key)).status_code == 200
    entry = LogEntry.objects.get(object_id=str(api_client.pk))
    assert entry.get_change_message() == "Rotated the API key."
    assert (
        new_key not in admin_client.get(reverse("admin:api_apiclient_changelist")).content.decode()
    )


def test_the_deactivate_action_switches_the_key_off(admin_client, client):
    api_client, raw_key = make_api_client(all_branches=True)
    admin_client.post(
        reverse("admin:api_apiclient_changelist"),
        {"action": "deactivate", "_selected_action": [api_client.pk]},
    )
    api_client.refresh_from_db()
    assert not api_client.is_active
    assert client.get("/api/v1/loans/", **key_header(raw_key)).status_code == 401


def test_an_integration_client_must_reach_some_branch(admin_client):
    response = admin_client.post(
        reverse("admin:api_apiclient_add"),
        {"name": "Nowhere", "kind": "INTEGRATION", "scopes": ["loans:read"]},
    )
    assert response.status_code == 200
    assert "Choose the branches it may see, or all branches" in response.content.decode()
    assert not ApiClient.objects.filter(name="Nowhere").exists()


def test_an_integration_client_cannot_be_changed_to_reach_nothing(admin_client):
    branch = BranchFactory()
    api_client, _ = make_api_client(branches=[branch])
    response = admin_client.post(
        reverse("admin:api_apiclient_change", args=[api_client.pk]),
        {
            "name": api_client.name,
            "kind": "INTEGRATION",
            "scopes": ["loans:read"],
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "Choose the branches it may see, or all branches" in response.content.decode()
    assert list(api_client.allowed_branches.all()) == [branch]


def test_a_partner_client_needs_no_branches(admin_client):
    from tests.factories import BankingPartnerFactory

    partner = BankingPartnerFactory()
    response = admin_client.post(
        reverse("admin:api_apiclient_add"),
        {
            "name": "Bank",
            "kind": "BANKING_PARTNER",
            "banking_partner": partner.pk,
            "scopes": ["partner:results"],
        },
    )
    assert response.status_code == 302
    assert ApiClient.objects.filter(name="Bank").exists()


def test_a_client_changed_in_the_admin_goes_through_api_client_update(admin_client, client):
    own, other = BranchFactory(), BranchFactory()
    api_client, raw_key = make_api_client(branches=[own])
    change = reverse("admin:api_apiclient_change", args=[api_client.pk])
    data = {"name": "Field app", "kind": "INTEGRATION", "scopes": ["loans:read"], "is_active": "on"}

    both = admin_client.post(change, {**data, "all_branches": "on", "allowed_branches": [own.pk]})
    assert both.status_code == 200
    assert "needs no list of branches" in both.content.decode()
    api_client.refresh_from_db()
    assert api_client.name != "Field app" and not api_client.all_branches

    moved = admin_client.post(change, {**data, "allowed_branches": [other.pk]})
    assert moved.status_code == 302
    api_client.refresh_from_db()
    assert api_client.name == "Field app"
    assert list(api_client.allowed_branches.all()) == [other]
    assert client.get("/api/v1/loans/", **key_header(raw_key)).status_code == 200  # same key
    changes = AuditMessage.objects.filter(
        ref=f"api.apiclient#{api_client.pk}", payload__action="update"
    ).values_list("payload__changes", flat=True)
    assert any("name" in c for c in changes) and any("allowed_branches" in c for c in changes)


def test_api_client_update_refuses_all_branches_with_a_list():
    branch = BranchFactory()
    api_client, _ = make_api_client(branches=[branch])
    with pytest.raises(ValidationError) as refused:
        api_client_update(client_id=api_client.pk, actor=None, all_branches=True)
    assert set(refused.value.message_dict) == {"allowed_branches"}
    api_client.refresh_from_db()
    assert not api_client.all_branches
    updated = api_client_update(
        client_id=api_client.pk, actor=None, all_branches=True, allowed_branches=[]
    )
    assert updated.all_branches and not updated.allowed_branches.exists()
