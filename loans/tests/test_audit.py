"""Changes to loan master data leave an audit trail with actor and request, PII masked."""

import json

import pytest
from django.urls import reverse

from audit.ddb_models import AuditEventItem
from audit.models import AuditMessage
from audit.selectors import audit_events_for_entity
from core.outbox import outbox_relay
from loans.models import CoBorrower, Customer
from tests.factories import BranchFactory, UserFactory, make_customer, make_loan

pytestmark = pytest.mark.django_db


def _events(entity):
    return list(AuditMessage.objects.filter(ref=entity).order_by("created_at", "id"))


def test_admin_create_change_delete_are_audited_with_actor_request_and_masked_pii(client):
    branch = BranchFactory()
    staff = UserFactory(role="Branch Manager", home_branch=branch)
    client.force_login(staff)
    form = {
        "name": "Ravi Iyer",
        "mobile": "9845012345",
        "pan": "AAAPI1234K",
        "branch": branch.pk,
        "email": "",
        "address": "",
        "bank_accounts-TOTAL_FORMS": "0",
        "bank_accounts-INITIAL_FORMS": "0",
    }
    response = client.post(
        reverse("admin:loans_customer_add"),
        form,
        HTTP_X_REQUEST_ID="req-create-0001",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 302
    customer = Customer.objects.get(name="Ravi Iyer")
    entity = f"loans.customer#{customer.pk}"

    form["name"] = "Ravi S. Iyer"
    client.post(reverse("admin:loans_customer_change", args=[customer.pk]), form)
    loan = make_loan(customer=customer)
    co = CoBorrower.objects.create(
        loan=loan, customer=make_customer(branch=branch), relationship="SPOUSE"
    )
    client.post(reverse("admin:loans_coborrower_delete", args=[co.pk]), {"post": "yes"})

    created, changed = _events(entity)
    assert created.action == "create"
    assert (created.actor_id, created.request_id, created.ip) == (
        staff.pk,
        "req-create-0001",
        "10.1.2.3",
    )
    assert created.changes["pan"] == [None, "XXXXXX234K"]
    assert created.changes["mobile"] == [None, "XXXXXX2345"]
    assert changed.action == "update"
    assert changed.changes == {"name": ["Ravi Iyer", "Ravi S. Iyer"]}
    (deleted,) = [e for e in _events(f"loans.coborrower#{co.pk}") if e.action == "delete"]
    assert deleted.actor_id == staff.pk
    assert deleted.changes["relationship"] == ["SPOUSE", None]

    assert outbox_relay()["audit"] >= 3
    stored = list(AuditEventItem.query(entity))
    assert len(stored) == 2
    raw = json.dumps([item.attribute_values for item in stored], default=str)
    assert "AAAPI1234K" not in raw
    assert "9845012345" not in raw
    page = audit_events_for_entity(entity=entity)
    assert [e.action for e in page.events] == ["update", "create"]


def test_history_page_of_a_loan_shows_its_audit_trail_and_is_scoped(client):
    loan = make_loan()
    staff = UserFactory(role="Branch Staff", home_branch=loan.branch)
    client.force_login(staff)
    outbox_relay()
    page = client.get(reverse("admin:loans_loanaccount_history", args=[loan.pk]))
    assert page.status_code == 200
    assert "create" in page.content.decode().lower()
    outsider = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    client.force_login(outsider)
    assert client.get(reverse("admin:loans_loanaccount_history", args=[loan.pk])).status_code == 404
