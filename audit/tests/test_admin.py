"""The admin: who/where recorded from a real admin request, the history page and the
audit browser, with permissions and masking."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import Branch
from audit.ddb_models import AuditEventItem
from audit.models import AuditMessage
from audit.services import audit_record
from audit.tracking import entity_for
from core.outbox import outbox_relay
from dynamo import registry
from tests.factories import AreaFactory, BranchFactory, UserFactory

from .test_services import closed_port

pytestmark = pytest.mark.django_db

BROWSER = "/admin/audit/events/"


@pytest.fixture
def superuser():
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def branch_form(branch: Branch, **changes) -> dict:
    data = {
        "code": branch.code,
        "name": branch.name,
        "area": branch.area_id,
        "state": branch.state,
        "cash_in_hand_limit": str(branch.cash_in_hand_limit),
        "cash_receipt_limit": str(branch.cash_receipt_limit),
        "cutoff_time": branch.cutoff_time.strftime("%H:%M:%S"),
        "is_active": "on" if branch.is_active else "",
        "_save": "Save",
    }
    data.update(changes)
    return data


def test_an_admin_change_records_actor_request_id_and_ip(admin_client, superuser):
    branch = BranchFactory(name="Indiranagar")
    response = admin_client.post(
        f"/admin/accounts/branch/{branch.pk}/change/",
        branch_form(branch, name="Indiranagar East", cash_in_hand_limit="250000.00"),
        HTTP_X_REQUEST_ID="req-admin-0001",
        REMOTE_ADDR="10.20.30.40",
    )
    assert response.status_code == 302, response.content[:2000]
    event = AuditMessage.objects.filter(ref=entity_for(branch)).latest("id")
    assert event.action == "update"
    assert event.changes == {
        "name": ["Indiranagar", "Indiranagar East"],
        "cash_in_hand_limit": ["200000.00", "250000.00"],
    }
    assert (event.actor_id, event.actor_repr) == (superuser.pk, "root")
    assert (event.request_id, event.ip) == ("req-admin-0001", "10.20.30.40")
    assert response["X-Request-ID"] == "req-admin-0001"


def test_an_unchanged_admin_save_records_nothing(admin_client):
    branch = BranchFactory()
    before = AuditMessage.objects.count()
    response = admin_client.post(f"/admin/accounts/branch/{branch.pk}/change/", branch_form(branch))
    assert response.status_code == 302
    assert AuditMessage.objects.count() == before


@pytest.mark.urls("audit.tests.urls")
def test_history_page_shows_relayed_and_pending_events(admin_client):
    branch = BranchFactory(name="Whitefield")
    outbox_relay()
    branch.name = "Whitefield Main"
    branch.save()  # still pending
    audit_record(instance_or_entity=branch, action="transition", remarks="Cut-off reviewed")
    response = admin_client.get(f"/history-admin/accounts/branch/{branch.pk}/history/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="site-name"' in html and 'id="change-history"' in html  # the admin's look
    assert html.count('class="audit-event') == 3
    assert html.count("audit-pending-flag") == 2
    assert "Whitefield Main" in html and "Cut-off reviewed" in html
    assert "Cash in hand limit" in html  # field labels, not names
    assert html.index("Cut-off reviewed") < html.index(">create<")  # newest first


@pytest.mark.urls("audit.tests.urls")
def test_history_page_shows_pending_changes_while_dynamodb_is_down(admin_client):
    branch = BranchFactory(name="Jayanagar")
    # Only the audit table is unreachable: sessions live in DynamoDB too.
    AuditEventItem.Meta.host = f"http://127.0.0.1:{closed_port()}"
    AuditEventItem._connection = None
    try:
        response = admin_client.get(f"/history-admin/accounts/branch/{branch.pk}/history/")
    finally:
        registry.configure(AuditEventItem)
    assert response.status_code == 200
    html = response.content.decode()
    assert "audit store (DynamoDB) is unavailable" in html
    assert html.count("audit-pending-flag") == 1


@pytest.mark.urls("audit.tests.urls")
def test_history_page_of_an_object_out_of_scope_is_not_found(client):
    mine, other = BranchFactory(), BranchFactory()
    clerk = UserFactory(is_staff=True, level="BRANCH", home_branch=mine)
    clerk.user_permissions.add(Permission.objects.get(codename="view_branch"))
    client.force_login(clerk)
    assert client.get(f"/history-admin/accounts/branch/{mine.pk}/history/").status_code == 200
    assert client.get(f"/history-admin/accounts/branch/{other.pk}/history/").status_code == 404


def test_browser_is_in_the_admin_index(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert BROWSER in html and "Audit events" in html


def test_browser_by_entity_actor_and_day(admin_client, superuser):
    clerk = UserFactory(username="clerk-7")
    AuditMessage.objects.all().delete()
    area = AreaFactory()
    branch = Branch.objects.create(code="MYS-1", name="Mysuru", area=area, state="Karnataka")
    audit_record(instance_or_entity=branch, action="transition", actor=clerk, remarks="by clerk")
    outbox_relay()

    by_entity = admin_client.get(BROWSER, {"entity": f"accounts.Branch#{branch.pk}"})
    assert by_entity.status_code == 200
    html = by_entity.content.decode()
    assert html.count('class="audit-event') == 2 and "Mysuru" in html and "by clerk" in html

    by_actor = admin_client.get(BROWSER, {"actor": "clerk-7"}).content.decode()
    assert by_actor.count('class="audit-event') == 1 and "by clerk" in by_actor
    assert (
        admin_client.get(BROWSER, {"actor": str(clerk.pk)})
        .content.decode()
        .count('class="audit-event')
        == 1
    )

    by_day = admin_client.get(BROWSER, {"day": timezone.localdate().isoformat()})
    assert by_day.content.decode().count('class="audit-event') >= 3  # area, branch, transition


def test_browser_pages_with_a_next_token(admin_client):
    for _ in range(3):
        audit_record(instance_or_entity="loans.loanaccount#4", action="transition")
    outbox_relay()
    from audit.admin import AuditEventsAdmin

    AuditEventsAdmin.page_size = 2
    try:
        first = admin_client.get(BROWSER, {"entity": "loans.loanaccount#4"})
        assert first.content.decode().count('class="audit-event') == 2
        next_url = first.context["next_url"]
        assert next_url
        second = admin_client.get(BROWSER + next_url)
        assert second.content.decode().count('class="audit-event') == 1
        assert second.context["next_url"] is None
    finally:
        AuditEventsAdmin.page_size = 50


def test_browser_explains_bad_input(admin_client):
    assert admin_client.get(BROWSER).context["rows"] is None  # just the form
    blank = admin_client.get(BROWSER, {"entity": " "}).content.decode()
    assert "Enter an entity, an actor or a day." in blank
    assert "No user named" in admin_client.get(BROWSER, {"actor": "nobody"}).content.decode()
    assert (
        "app_label.model_name#id" in admin_client.get(BROWSER, {"entity": "bad"}).content.decode()
    )


def test_browser_refuses_a_user_without_the_permission(client):
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_branch"))
    client.force_login(clerk)
    assert client.get(BROWSER, {"day": timezone.localdate().isoformat()}).status_code == 403
    assert BROWSER not in client.get("/admin/").content.decode()


def test_browser_admits_a_user_with_the_permission(client):
    auditor = UserFactory(is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_events"))
    client.force_login(auditor)
    assert client.get(BROWSER, {"day": timezone.localdate().isoformat()}).status_code == 200


def test_pages_never_show_masked_or_secret_values_in_the_clear(admin_client):
    user = UserFactory(username="pii-user", mobile="9876543210")
    user.set_password("An0ther-pass-2026")
    user.mobile = "9123456789"
    user.save()
    raw_hash = user.password
    outbox_relay()
    user.mobile = "9000012345"
    user.save()  # pending
    by_entity = admin_client.get(BROWSER, {"entity": entity_for(user)}).content.decode()
    assert "XXXXXX6789" in by_entity and "XXXXXX2345" in by_entity  # relayed and pending
    by_day = admin_client.get(BROWSER, {"day": timezone.localdate().isoformat()}).content.decode()
    assert "XXXXXX6789" in by_day and "***" in by_day
    for html in (by_entity, by_day):
        for raw in ("9876543210", "9123456789", "9000012345", raw_hash):
            assert raw not in html


def test_browser_says_nothing_about_events_outside_a_users_scope(client, settings):
    settings.OUTBOX_DELIVER_ON_COMMIT = False
    mine, other = BranchFactory(), BranchFactory()
    manager = UserFactory(is_staff=True, level="BRANCH", home_branch=mine)
    manager.user_permissions.add(Permission.objects.get(codename="view_events"))
    for branch in (mine, other):
        branch.name = f"Renamed {branch.code}"
        branch.save()
    outbox_relay()
    other.name = "Renamed again, not relayed yet"
    other.save()
    client.force_login(manager)
    html = client.get(BROWSER, {"day": timezone.localdate().isoformat()}).content.decode()
    assert f"Renamed {mine.code}" in html
    assert f"Renamed {other.code}" not in html
    assert "outside your scope" not in html
    # nor how many events, anywhere, wait to be relayed
    assert "waiting to be relayed" not in html


def test_browser_tells_a_user_who_sees_everything_what_waits_to_be_relayed(admin_client, settings):
    settings.OUTBOX_DELIVER_ON_COMMIT = False
    audit_record(instance_or_entity="loans.loanaccount#1", action="transition")
    html = admin_client.get(BROWSER, {"day": timezone.localdate().isoformat()}).content.decode()
    assert re.search(r"\d+ events? waiting to be relayed", html)
