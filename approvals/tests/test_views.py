"""The approvals inbox and detail pages: who sees what waits, deciding from the page, and
the refusals (maker-checker, permission, already decided, scope, login, CSRF)."""

import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from approvals.models import ApprovalRequest
from approvals.selectors import InboxEntry, inbox_count, inbox_entries, register_inbox_source
from audit.models import AuditMessage
from core.outbox import outbox_relay
from payments.models import Posting
from payments.services import payment_ingest, payment_reversal_request, payments_post_due
from tests.factories import AreaFactory, BranchFactory, UserFactory, make_loan, payment

pytestmark = pytest.mark.django_db

INBOX = "/approvals/"
MINE = "/approvals/mine/"


def detail_url(request: ApprovalRequest) -> str:
    return f"/approvals/requests/{request.pk}/"


def decide_url(request: ApprovalRequest) -> str:
    return f"/approvals/requests/{request.pk}/decide/"


@pytest.fixture
def reversal():
    """A posted payment of 5,000 at a branch, and its reversal asked for by the manager."""
    area = AreaFactory()
    branch, other = BranchFactory(area=area), BranchFactory()
    loan = make_loan(branch=branch)
    txn_id = payment_ingest(
        payment=payment(loan, amount="5000.00"),
        idempotency_key=f"k-{time.time_ns()}",
        principal=UserFactory(is_superuser=True),
        source="test",
    ).body["txn_id"]
    payments_post_due()
    manager = UserFactory(role="Branch Manager", home_branch=branch)
    request = payment_reversal_request(txn_id=txn_id, reason="Cheque bounced", actor=manager)
    return {
        "branch": branch,
        "other": other,
        "area": area,
        "loan": loan,
        "txn_id": txn_id,
        "manager": manager,
        "request": request,
        "finance": UserFactory(role="Finance", level=User.Level.HEAD_OFFICE),
    }


def logged_in(user, client=None) -> Client:
    client = client or Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_inbox_shows_finance_the_reversal_but_not_the_maker_nor_branch_staff(reversal):
    finance = logged_in(reversal["finance"]).get(INBOX)
    assert finance.status_code == 200
    entries = finance.context["entries"]
    assert [e.url for e in entries] == [detail_url(reversal["request"])]
    html = finance.content.decode()
    assert "Payment reversal" in html and reversal["txn_id"] in html
    assert reversal["manager"].username in html and str(reversal["branch"]) in html
    assert 'id="site-name"' in html  # the admin's look
    assert "Approvals (1)" in html  # the header's link counts it

    for user in (
        reversal["manager"],
        UserFactory(role="Branch Staff", home_branch=reversal["branch"]),
    ):
        response = logged_in(user).get(INBOX)
        assert response.status_code == 200
        assert response.context["entries"] == []
        assert "Nothing waits for you." in response.content.decode()
        assert "Approvals (" not in response.content.decode()


def test_inbox_is_scoped_to_the_checkers_branches(reversal):
    outside = UserFactory(role="Finance", level=User.Level.BRANCH, home_branch=reversal["other"])
    inside = UserFactory(role="Finance", level=User.Level.AREA, home_area=reversal["area"])
    assert inbox_entries(outside) == [] and inbox_count(outside) == 0
    assert [e.subject for e in inbox_entries(inside)] == [reversal["request"].entity_repr]
    assert inbox_count(inside) == 1


def test_inbox_lists_entries_of_other_registered_sources(reversal):
    from approvals import selectors

    before = dict(selectors._sources)
    extra = InboxEntry(
        kind_label="DCR",
        subject="DCR of B0001 for 2026-11-20",
        branch="B0001",
        maker="bm1",
        submitted_at=reversal["request"].made_at.replace(year=2025),
        url="/somewhere/",
    )
    register_inbox_source("dcr", lambda user: [extra] if user.is_superuser else [])
    try:
        root = UserFactory(is_superuser=True)
        entries = inbox_entries(root)
        assert [e.kind_label for e in entries] == ["DCR", "Payment reversal"]  # oldest first
        assert inbox_count(root) == 2
        assert inbox_count(reversal["finance"]) == 1
    finally:
        selectors._sources.clear()
        selectors._sources.update(before)


def test_detail_shows_the_request_its_allocation_and_history(reversal):
    request = reversal["request"]
    outbox_relay()
    response = logged_in(reversal["finance"]).get(detail_url(request))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cheque bounced" in html
    assert reversal["txn_id"] in html  # the payload, readable
    assert 'id="approval-subject"' in html and 'class="allocation-row"' in html
    assert "₹5,000.00" in html
    assert 'id="decision-form"' in html
    assert 'class="audit-event' in html  # the creation, from the audit trail

    maker_view = logged_in(reversal["manager"]).get(detail_url(request)).content.decode()
    assert 'id="decision-form"' not in maker_view
    assert "another person must decide it" in maker_view


def test_approving_from_the_detail_page_reverses_the_posting(reversal):
    request = reversal["request"]
    client = logged_in(reversal["finance"])
    response = client.post(
        decide_url(request), {"decision": "approve", "remarks": "Bank confirmed"}, follow=True
    )
    assert response.redirect_chain[-1][0] == INBOX
    assert any(m.startswith("Approved") for m in messages_of(response))
    request.refresh_from_db()
    assert (request.status, request.checker, request.remarks) == (
        "APPROVED",
        reversal["finance"],
        "Bank confirmed",
    )
    posting = Posting.objects.get(txn_id=reversal["txn_id"])
    assert posting.reversed_at and posting.reversed_by == reversal["finance"]
    assert AuditMessage.objects.filter(ref=f"approvals.approvalrequest#{request.pk}").exists()

    page = client.get(detail_url(request)).content.decode()
    assert "Approved" in page and 'id="decision-form"' not in page
    assert "Bank confirmed" in page


def test_returning_needs_remarks(reversal):
    request = reversal["request"]
    client = logged_in(reversal["finance"])
    refused = client.post(decide_url(request), {"decision": "return", "remarks": "  "})
    assert refused.status_code == 200
    assert refused.context["form"].errors["remarks"] == ["Say why you return it."]
    request.refresh_from_db()
    assert request.status == "PENDING"

    client.post(decide_url(request), {"decision": "return", "remarks": "No bank memo"})
    request.refresh_from_db()
    assert (request.status, request.remarks) == ("REJECTED", "No bank memo")
    assert Posting.objects.get(txn_id=reversal["txn_id"]).reversed_at is None

    mine = logged_in(reversal["manager"]).get(MINE).content.decode()
    assert "Returned" in mine and "No bank memo" in mine


def test_a_second_decision_is_told_who_decided_first(reversal):
    request = reversal["request"]
    first = reversal["finance"]
    logged_in(first).post(decide_url(request), {"decision": "approve", "remarks": ""})
    second = UserFactory(role="Finance", level=User.Level.HEAD_OFFICE)
    response = logged_in(second).post(
        decide_url(request), {"decision": "return", "remarks": "no"}, follow=True
    )
    assert messages_of(response) == [f"Already approved by {first.username}."]
    request.refresh_from_db()
    assert (request.status, request.checker) == ("APPROVED", first)
    assert Posting.objects.filter(txn_id=reversal["txn_id"], reversed_at__isnull=False).count() == 1


def test_the_maker_and_users_without_the_checker_permission_are_refused(reversal):
    request = reversal["request"]
    maker = logged_in(reversal["manager"])
    response = maker.post(decide_url(request), {"decision": "approve"}, follow=True)
    assert messages_of(response) == ["You made this request; another person must approve it."]
    other_manager = logged_in(UserFactory(role="Branch Manager", home_branch=reversal["branch"]))
    response = other_manager.post(decide_url(request), {"decision": "approve"}, follow=True)
    assert messages_of(response) == ["You may not approve this kind of request."]
    request.refresh_from_db()
    assert request.status == "PENDING"


def test_a_request_outside_the_users_scope_is_not_found(reversal):
    request = reversal["request"]
    outsider = UserFactory(role="Finance", level=User.Level.BRANCH, home_branch=reversal["other"])
    client = logged_in(outsider)
    assert client.get(detail_url(request)).status_code == 404
    assert client.post(decide_url(request), {"decision": "approve"}).status_code == 404
    request.refresh_from_db()
    assert request.status == "PENDING"
    # in scope but neither maker, viewer nor checker: refused
    staff = logged_in(UserFactory(role="Branch Staff", home_branch=reversal["branch"]))
    assert staff.get(detail_url(request)).status_code == 403


def test_anonymous_and_non_staff_users_are_sent_to_the_admin_login(reversal):
    request = reversal["request"]
    for url in (INBOX, MINE, detail_url(request)):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(f"{reverse('admin:login')}?next=")
    response = Client().post(decide_url(request), {"decision": "approve"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    not_staff = logged_in(UserFactory(is_staff=False, role="Finance"))
    assert not_staff.get(INBOX).status_code == 302
    request.refresh_from_db()
    assert request.status == "PENDING"


def test_the_decision_form_enforces_csrf(reversal):
    request = reversal["request"]
    client = logged_in(reversal["finance"], Client(enforce_csrf_checks=True))
    assert client.post(decide_url(request), {"decision": "approve"}).status_code == 403
    request.refresh_from_db()
    assert request.status == "PENDING"
    page = client.get(detail_url(request)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        decide_url(request), {"decision": "approve", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == "APPROVED"
    assert client.get(decide_url(request)).status_code == 405


def test_my_requests_lists_what_the_user_asked_for_with_its_outcome(reversal):
    response = logged_in(reversal["manager"]).get(MINE)
    assert response.status_code == 200
    assert [a.pk for a in response.context["page"]] == [reversal["request"].pk]
    assert "Pending" in response.content.decode()
    assert list(logged_in(reversal["finance"]).get(MINE).context["page"]) == []


def test_history_admin_is_read_only_and_scoped(reversal):
    url = "/admin/approvals/approvalrequest/"
    finance = logged_in(reversal["finance"])
    listing = finance.get(url, {"kind__exact": "PAYMENT_REVERSAL", "status__exact": "PENDING"})
    assert [a.pk for a in listing.context["cl"].result_list] == [reversal["request"].pk]
    assert finance.get(f"{url}add/").status_code == 403
    page = finance.get(f"{url}{reversal['request'].pk}/change/").content.decode()
    assert 'name="_save"' not in page and detail_url(reversal["request"]) in page

    other_manager = UserFactory(
        role="Branch Manager", level=User.Level.BRANCH, home_branch=reversal["other"]
    )
    outsider = logged_in(other_manager).get(url)
    assert list(outsider.context["cl"].result_list) == []
    assert str(reversal["branch"]) not in outsider.content.decode()


def test_counting_requests_costs_at_most_two_queries(reversal, django_assert_max_num_queries):
    from approvals import selectors

    finance = User.objects.get(pk=reversal["finance"].pk)
    finance.get_all_permissions()  # loaded by every admin page before the header
    with django_assert_max_num_queries(2):  # the scope (at most) and the count
        assert selectors._sources["approval_requests"].count(finance) == 1


def _another_reversal(reversal) -> ApprovalRequest:
    txn_id = payment_ingest(
        payment=payment(reversal["loan"], amount="700.00"),
        idempotency_key=f"k-{time.time_ns()}",
        principal=UserFactory(is_superuser=True),
        source="test",
    ).body["txn_id"]
    payments_post_due()
    return payment_reversal_request(txn_id=txn_id, reason="Wrong loan", actor=reversal["manager"])


def _header(client) -> str:
    html = client.get("/admin/").content.decode()
    return re.search(r'id="approvals-link">([^<]*)<', html).group(1)


def test_the_header_count_is_kept_and_the_users_own_change_counts_afresh(reversal):
    client = logged_in(reversal["finance"])
    assert _header(client) == "Approvals (1)"
    _another_reversal(reversal)  # another maker's change: the header may lag behind it
    assert _header(client) == "Approvals (1)"
    assert len(client.get(INBOX).context["entries"]) == 2  # the inbox counts afresh
    # any change the user makes (here a refused return, without remarks) counts again
    client.post(decide_url(reversal["request"]), {"decision": "return", "remarks": ""})
    assert _header(client) == "Approvals (2)"


def test_without_the_cache_the_header_counts_in_the_database(reversal, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    client = logged_in(reversal["finance"])
    assert _header(client) == "Approvals (1)"
    _another_reversal(reversal)
    assert _header(client) == "Approvals (2)"
