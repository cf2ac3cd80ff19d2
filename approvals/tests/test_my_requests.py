"""My requests lists what checkers returned to the user (a DCR, a mandate) with the
checker's remarks and a link to fix it, beside the user's own approval requests; nobody
else's, and nothing once it is submitted again."""

import pytest
from django.test import Client
from django.urls import reverse

from mandates.services import mandate_return, mandate_submit
from reconciliation import services as recon
from tests.factories import days_ago, draft_mandate, pay

pytestmark = pytest.mark.django_db

MINE = "/approvals/mine/"


def my_requests(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(MINE)
    assert response.status_code == 200
    return response.content.decode()


def test_a_returned_dcr_shows_in_its_submitters_requests_with_the_remarks(world):
    own = world.branches["own"]
    pay(world.loans["own"], "100.00")
    dcr = recon.dcr_build(branch_id=own.pk, business_date=days_ago(1))
    manager, approver = world.users["BM"], world.users["AM"]
    approver.first_name, approver.last_name = "Kavita", "Shah"
    approver.save()
    recon.dcr_submit(dcr_id=dcr.pk, actor=manager)
    recon.dcr_return(dcr_id=dcr.pk, actor=approver, remarks="Recount the UPI receipts")

    html = my_requests(manager)
    returned = html[html.index('id="returned"') : html.index('id="my-requests"')]
    assert returned.count('class="returned-entry"') == 1
    assert f"DCR {own.name}" in returned and "Recount the UPI receipts" in returned
    assert "Kavita Shah" in returned
    assert f'href="{reverse("reconciliation:dcr", args=[dcr.pk])}" class="returned-fix"' in returned
    assert 'class="returned-entry"' not in my_requests(approver)  # not theirs

    recon.dcr_submit(dcr_id=dcr.pk, actor=manager)  # fixed and sent again: nothing to fix
    assert 'class="returned-entry"' not in my_requests(manager)


def test_a_returned_mandate_shows_in_its_makers_requests_with_the_remarks(world):
    staff, manager = world.users["BS"], world.users["BM"]
    mandate = draft_mandate(world.loans["own"], staff)
    mandate_submit(mandate_id=mandate.pk, actor=staff)
    mandate_return(mandate_id=mandate.pk, actor=manager, remarks="The IFSC is of another branch")

    html = my_requests(staff)
    assert html.count('class="returned-entry"') == 1
    assert "The IFSC is of another branch" in html
    assert world.loans["own"].loan_number in html
    change = reverse("admin:mandates_mandate_change", args=[mandate.pk])
    assert f'href="{change}" class="returned-fix"' in html
    assert 'class="returned-entry"' not in my_requests(world.users["AM"])

    mandate_submit(mandate_id=mandate.pk, actor=staff)
    assert 'class="returned-entry"' not in my_requests(staff)
