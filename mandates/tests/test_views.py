"""The approver's screens: mandates in the approvals inbox, and the review page with
Approve / Return and its refusals (maker-checker, already decided, scope, login, CSRF)."""

import re
from datetime import date

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from approvals.selectors import inbox_count, inbox_entries
from mandates import services
from mandates.models import Mandate
from tests.factories import (
    AreaFactory,
    BranchFactory,
    UserFactory,
    actors,
    draft_mandate,
    make_loan,
)

pytestmark = pytest.mark.django_db

INBOX = "/approvals/"


def review_url(mandate) -> str:
    return f"/mandates/{mandate.pk}/review/"


def decide_url(mandate) -> str:
    return f"/mandates/{mandate.pk}/review/decide/"


@pytest.fixture
def pending():
    """A mandate submitted by branch staff, waiting for the branch manager."""
    area = AreaFactory()
    branch, other = BranchFactory(area=area), BranchFactory()
    loan = make_loan(branch=branch, disbursed_on=date(2026, 10, 1), tenure_months=12)
    people = actors(branch)
    mandate = draft_mandate(loan, people["staff"], account_number="123456789012")
    services.mandate_submit(mandate_id=mandate.pk, actor=people["staff"])
    return {
        "area": area,
        "branch": branch,
        "other": other,
        "loan": loan,
        "people": people,
        "mandate": mandate,
        "other_manager": UserFactory(role="Branch Manager", home_branch=other),
    }


def logged_in(user, client=None) -> Client:
    client = client or Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- The inbox ----------------------------------------------------------------------------


def test_the_inbox_lists_a_pending_mandate_for_the_branch_manager(pending):
    manager = pending["people"]["manager"]
    response = logged_in(manager).get(INBOX)
    assert response.status_code == 200
    mine = [e for e in response.context["entries"] if e.source == "mandates"]
    assert [e.url for e in mine] == [review_url(pending["mandate"])]
    html = response.content.decode()
    assert "Mandate registration" in html and pending["loan"].loan_number in html
    assert pending["people"]["staff"].username in html
    assert inbox_count(manager) == 1
    area_manager = UserFactory(
        role="Area Manager", level=User.Level.AREA, home_area=pending["area"]
    )
    assert [e.source for e in inbox_entries(area_manager)] == ["mandates"]


def test_the_inbox_does_not_list_it_for_the_maker_another_branch_or_staff(pending):
    maker = pending["people"]["staff"]
    maker.groups.add(*pending["people"]["manager"].groups.all())  # even with the permission
    maker = User.objects.get(pk=maker.pk)
    for user in (
        maker,
        pending["other_manager"],
        UserFactory(role="Branch Staff", home_branch=pending["branch"]),
    ):
        assert [e for e in inbox_entries(user) if e.source == "mandates"] == []
        assert inbox_count(user) == 0


def test_the_inbox_count_is_one_count_query(
    pending, django_assert_num_queries, django_assert_max_num_queries
):
    manager = User.objects.get(pk=pending["people"]["manager"].pk)
    manager.get_all_permissions()  # loaded by every admin page before the header
    from mandates.selectors import mandate_inbox_count

    with django_assert_max_num_queries(2):  # the user's scope (groups), then the count
        assert mandate_inbox_count(manager) == 1
    with django_assert_num_queries(1):  # the scope is cached on the user
        assert mandate_inbox_count(manager) == 1
    finance = UserFactory(role="Finance")
    finance.get_all_permissions()
    with django_assert_num_queries(0):
        assert mandate_inbox_count(finance) == 0


# --- The review page ------------------------------------------------------------------------


def test_the_review_page_shows_the_loan_the_masked_account_the_schedule_and_history(pending):
    response = logged_in(pending["people"]["manager"]).get(review_url(pending["mandate"]))
    assert response.status_code == 200
    html = response.content.decode()
    loan = pending["loan"]
    assert loan.loan_number in html and loan.customer.name in html and str(loan.branch) in html
    assert "XXXXXXXX9012" in html and "123456789012" not in html
    assert "SBIN0001234" in html
    assert response.context["schedule"], "the upcoming instalments"
    assert all(
        row["instalment"].due_date >= timezone.localdate() for row in response.context["schedule"]
    )
    moves = [(t.from_status, t.to_status) for t in response.context["transitions"]]
    assert moves == [("", "DRAFT"), ("DRAFT", "PENDING_APPROVAL")]
    assert any(row["event"].action == "transition" for row in response.context["history"])
    assert 'id="decision-form"' in html and 'id="site-name"' in html


def test_approving_records_the_checker(pending):
    manager = pending["people"]["manager"]
    client = logged_in(manager)
    response = client.post(
        decide_url(pending["mandate"]), {"decision": "approve", "remarks": "documents verified"}
    )
    assert response.status_code == 302 and response["Location"] == INBOX
    mandate = Mandate.objects.get(pk=pending["mandate"].pk)
    assert (mandate.status, mandate.checker) == ("APPROVED", manager)
    last = mandate.transitions.last()
    assert (last.to_status, last.actor, last.remarks) == ("APPROVED", manager, "documents verified")
    followed = client.get(INBOX)
    assert any("Approved" in m for m in messages_of(followed))
    assert [e for e in followed.context["entries"] if e.source == "mandates"] == []


def test_returning_needs_remarks(pending):
    client = logged_in(pending["people"]["manager"])
    refused = client.post(decide_url(pending["mandate"]), {"decision": "return", "remarks": " "})
    assert refused.status_code == 200
    assert "remarks" in refused.context["form"].errors
    assert Mandate.objects.get(pk=pending["mandate"].pk).status == "PENDING_APPROVAL"
    returned = client.post(
        decide_url(pending["mandate"]), {"decision": "return", "remarks": "wrong IFSC"}
    )
    assert returned.status_code == 302
    mandate = Mandate.objects.get(pk=pending["mandate"].pk)
    assert (mandate.status, mandate.checker) == ("DRAFT", pending["people"]["manager"])
    assert mandate.transitions.last().remarks == "wrong IFSC"


def test_a_second_decision_is_told_it_was_decided_already(pending):
    second = UserFactory(role="Branch Manager", home_branch=pending["branch"])
    services.mandate_approve(mandate_id=pending["mandate"].pk, actor=pending["people"]["manager"])
    response = logged_in(second).post(
        decide_url(pending["mandate"]), {"decision": "return", "remarks": "no"}, follow=True
    )
    assert response.redirect_chain[-1][0] == review_url(pending["mandate"])
    assert any(
        f"approved already (by {pending['people']['manager'].username})" in m
        for m in messages_of(response)
    )
    assert 'id="decision-form"' not in response.content.decode()
    assert Mandate.objects.get(pk=pending["mandate"].pk).status == "APPROVED"


def test_the_maker_cannot_approve_their_own_mandate(pending):
    maker = pending["people"]["manager"]
    mandate = draft_mandate(pending["loan"], maker, account_number="99887766554")
    services.mandate_submit(mandate_id=mandate.pk, actor=maker)
    client = logged_in(maker)
    page = client.get(review_url(mandate)).content.decode()
    assert 'id="decision-form"' not in page and "another person must approve it" in page
    response = client.post(decide_url(mandate), {"decision": "approve"}, follow=True)
    assert any("another person must approve it" in m for m in messages_of(response))
    assert Mandate.objects.get(pk=mandate.pk).status == "PENDING_APPROVAL"


def test_branch_staff_may_look_but_not_approve(pending):
    staff = UserFactory(role="Branch Staff", home_branch=pending["branch"])
    client = logged_in(staff)
    page = client.get(review_url(pending["mandate"])).content.decode()
    assert "You may not approve mandates." in page
    response = client.post(decide_url(pending["mandate"]), {"decision": "approve"}, follow=True)
    assert any("You may not approve mandates" in m for m in messages_of(response))
    assert Mandate.objects.get(pk=pending["mandate"].pk).status == "PENDING_APPROVAL"


def test_a_mandate_outside_the_users_scope_is_not_found(pending):
    client = logged_in(pending["other_manager"])
    assert client.get(review_url(pending["mandate"])).status_code == 404
    assert client.post(decide_url(pending["mandate"]), {"decision": "approve"}).status_code == 404
    assert Mandate.objects.get(pk=pending["mandate"].pk).status == "PENDING_APPROVAL"


def test_anonymous_and_non_staff_users_are_sent_to_the_admin_login(pending):
    url = review_url(pending["mandate"])
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    not_staff = logged_in(
        UserFactory(is_staff=False, role="Branch Manager", level=User.Level.HEAD_OFFICE)
    )
    assert not_staff.get(url).status_code == 302
    refused = not_staff.post(decide_url(pending["mandate"]), {"decision": "approve"})
    assert refused.status_code == 302
    assert Mandate.objects.get(pk=pending["mandate"].pk).status == "PENDING_APPROVAL"


def test_the_decision_form_enforces_csrf(pending):
    mandate = pending["mandate"]
    client = logged_in(pending["people"]["manager"], Client(enforce_csrf_checks=True))
    assert client.post(decide_url(mandate), {"decision": "approve"}).status_code == 403
    assert Mandate.objects.get(pk=mandate.pk).status == "PENDING_APPROVAL"
    page = client.get(review_url(mandate)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        decide_url(mandate), {"decision": "approve", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert Mandate.objects.get(pk=mandate.pk).status == "APPROVED"
    assert client.get(decide_url(mandate)).status_code == 405


def test_a_stop_request_shows_the_mandate_on_the_approvals_page(pending):
    people = pending["people"]
    services.mandate_approve(mandate_id=pending["mandate"].pk, actor=people["manager"])
    services.mandate_send_to_bank(mandate_id=pending["mandate"].pk, actor=people["ops"])
    request = services.mandate_stop_request(
        mandate_id=pending["mandate"].pk,
        action="CANCEL",
        reason="loan foreclosed",
        actor=people["manager"],
    )
    html = logged_in(people["ops"]).get(f"/approvals/requests/{request.pk}/").content.decode()
    assert 'id="mandate-stop-detail"' in html
    assert "XXXXXXXX9012" in html and review_url(pending["mandate"]) in html
