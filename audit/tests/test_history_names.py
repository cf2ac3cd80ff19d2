"""History panels name people and related rows, not database ids: the audit History page
(a branch moved to another area, by whom), the audit browser, and the status history of a
workflow (a DCR's submitter)."""

import pytest
from django.urls import reverse

from reconciliation import services as recon
from tests.factories import AreaFactory, BranchFactory, UserFactory, branch_with_loan, days_ago, pay

from .test_admin import branch_form

pytestmark = pytest.mark.django_db


@pytest.mark.urls("audit.tests.urls")
def test_the_history_page_names_the_area_and_the_person_not_their_ids(client):
    person = UserFactory(is_superuser=True, first_name="Meera", last_name="Kulkarni")
    client.force_login(person)
    west, east = AreaFactory(name="Pune West"), AreaFactory(name="Pune East")
    branch = BranchFactory(area=west)
    moved = client.post(
        f"/admin/accounts/branch/{branch.pk}/change/", branch_form(branch, area=east.pk)
    )
    assert moved.status_code == 302

    html = client.get(f"/history-admin/accounts/branch/{branch.pk}/history/").content.decode()
    row = html[html.index(">update<") :]
    assert "Pune West" in row and "Pune East" in row
    assert f"<td>{west.pk}</td>" not in row and f"<td>{east.pk}</td>" not in row
    assert "Meera Kulkarni" in html

    browsed = client.get("/admin/audit/events/", {"entity": f"accounts.branch#{branch.pk}"})
    assert "Pune East" in browsed.content.decode()


def test_a_dcrs_status_history_names_its_submitter():
    branch, loan = branch_with_loan()
    pay(loan, "100.00")
    dcr = recon.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    manager = UserFactory(
        role="Branch Manager", home_branch=branch, first_name="Arjun", last_name="Rao"
    )
    recon.dcr_submit(dcr_id=dcr.pk, actor=manager)
    approver = UserFactory(role="Area Manager", home_area=branch.area)
    from django.test import Client

    client = Client()
    client.force_login(approver)
    html = client.get(reverse("reconciliation:dcr", args=[dcr.pk])).content.decode()
    history = html[html.index('id="history"') :]
    assert "Arjun Rao" in history and manager.username not in history
    assert 'Submitted by:</label><div class="readonly">Arjun Rao' in html


def test_a_requests_history_shows_labels_ist_times_and_names(world):
    from django.test import Client

    from loans.services import Change, customer_change_request

    customer = world.loans["own"].customer
    request = customer_change_request(
        customer_id=customer.pk,
        change=Change.MOBILE,
        new={"mobile": "9988776655"},
        reason="Customer brought a letter",
        actor=world.users["BS"],
    )
    client = Client()
    client.force_login(world.users["BM"])
    html = client.get(reverse("approvals:detail", args=[request.pk])).content.decode()
    history = html[html.index(">create<") :]
    assert "Customer change" in history and "CUSTOMER_CHANGE" not in history
    assert f"loans.customer#{customer.pk}" not in history
    assert str(customer) in history  # the entity by its name
    assert "+00:00" not in history and " IST" in history  # the request's time, in IST
