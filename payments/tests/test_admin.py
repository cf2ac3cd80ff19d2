"""The payments staff screens: postings, the transaction browser and the posting queue over
DynamoDB, the loan page's payments, the ledger switch and the reversal request."""

import re
import socket
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from approvals import selectors as approvals_selectors
from approvals.models import ApprovalRequest
from dynamo import registry
from payments import services
from payments.admin import TransactionRecordAdmin
from payments.ddb_models import QueueItem, TransactionItem, queue_status_set
from payments.models import LedgerSwitch, Posting
from payments.services import payment_ingest, payments_post_due
from tests.factories import UserFactory, payment

pytestmark = pytest.mark.django_db

POSTINGS = "/admin/payments/posting/"
BROWSER = "/admin/payments/transactionrecord/"
QUEUE = "/admin/payments/postingqueueentry/"
SWITCH = "/admin/payments/ledgerswitch/"


def ingest(loan, principal, amount="1000.00", **kw) -> str:
    return payment_ingest(
        payment=payment(loan, amount=amount, **kw),
        idempotency_key=f"k-{time.time_ns()}",
        principal=principal,
        source="test",
    ).body["txn_id"]


@pytest.fixture
def posted(world):
    """A payment posted on the loan of ``own`` and one on the loan of ``other`` (far)."""
    own, other = world.branches["own"], world.branches["far"]
    own_loan, other_loan = world.loans["own"], world.loans["far"]
    principal = UserFactory(is_superuser=True)
    own_txn = ingest(own_loan, principal, amount="5000.00", receipt_number="RC-OWN-1")
    other_txn = ingest(other_loan, principal, amount="7000.00", receipt_number="RC-OTHER-1")
    assert payments_post_due() == {"posted": 2}
    return {
        "own": own,
        "other": other,
        "own_loan": own_loan,
        "other_loan": other_loan,
        "own_txn": own_txn,
        "other_txn": other_txn,
        "principal": principal,
        "own_posting": Posting.objects.get(txn_id=own_txn),
        "other_posting": Posting.objects.get(txn_id=other_txn),
    }


def login(client, user):
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- Postings ---------------------------------------------------------------------------


def test_posting_list_shows_only_the_users_branch_and_another_branchs_page_redirects(
    client, posted
):
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    response = client.get(POSTINGS)
    assert response.status_code == 200
    shown = {p.pk for p in response.context["cl"].result_list}
    assert shown == {posted["own_posting"].pk}
    own = client.get(f"{POSTINGS}{posted['own_posting'].pk}/change/")
    assert own.status_code == 200
    assert client.get(f"{POSTINGS}{posted['other_posting'].pk}/change/").status_code == 302


def test_posting_list_is_read_only_with_scoped_branch_filter(client, posted):
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    html = client.get(POSTINGS).content.decode()
    assert posted["own"].name in html
    assert posted["other"].name not in html  # neither a row nor a filter choice
    assert client.get(f"{POSTINGS}add/").status_code == 403
    page = client.get(f"{POSTINGS}{posted['own_posting'].pk}/change/").content.decode()
    assert 'name="_save"' not in page


def test_posting_search_is_exact_by_transaction_id_or_loan_number(client, posted):
    login(client, UserFactory(role="Finance"))
    by_txn = client.get(POSTINGS, {"q": posted["own_txn"].lower()})
    assert [p.txn_id for p in by_txn.context["cl"].result_list] == [posted["own_txn"]]
    by_loan = client.get(POSTINGS, {"q": posted["other_loan"].loan_number})
    assert [p.txn_id for p in by_loan.context["cl"].result_list] == [posted["other_txn"]]
    partial = client.get(POSTINGS, {"q": posted["own_txn"][:10]})
    assert list(partial.context["cl"].result_list) == []


def test_posting_filters_by_mode_and_reversal(client, posted):
    login(client, UserFactory(role="Finance"))
    cash = client.get(POSTINGS, {"mode": "CASH"}).context["cl"].result_list
    assert len(cash) == 2
    assert list(client.get(POSTINGS, {"mode": "UPI"}).context["cl"].result_list) == []
    Posting.objects.filter(pk=posted["own_posting"].pk).update(reversed_at=timezone.now())
    reversed_ = client.get(POSTINGS, {"reversed": "yes"}).context["cl"].result_list
    assert [p.pk for p in reversed_] == [posted["own_posting"].pk]


@pytest.mark.parametrize("extra_postings", [0, 6])
@pytest.mark.parametrize(("role", "queries"), [("Branch Staff", 7), ("Finance", 7)])
def test_posting_changelist_query_count_is_pinned(
    client, posted, django_assert_num_queries, extra_postings, role, queries, monkeypatch
):
    # the header counts every inbox source; other apps' sources pin their own counts
    sources = {k: v for k, v in approvals_selectors._sources.items() if k == "approval_requests"}
    monkeypatch.setattr(approvals_selectors, "_sources", sources)
    for _ in range(extra_postings):
        ingest(posted["own_loan"], posted["principal"], amount="100.00")
    payments_post_due()
    user = (
        UserFactory(role=role, home_branch=posted["own"])
        if role == "Branch Staff"
        else UserFactory(role=role)
    )
    login(client, user)
    # session user, permissions (2), the branch filter's choices, bounded count, rows with
    # loan and branch; then the branch user's groups (scope) or, for the head-office
    # checker, the approvals count in the header
    with django_assert_num_queries(queries):
        response = client.get(POSTINGS)
    assert len(response.context["cl"].result_list) >= 1 + extra_postings


def test_posting_page_shows_the_allocation_per_instalment(client, posted):
    login(client, UserFactory(role="Finance"))
    posting = posted["own_posting"]
    html = client.get(f"{POSTINGS}{posting.pk}/change/").content.decode()
    assert 'id="posting-allocation"' in html
    assert html.count('class="allocation-row"') == len(posting.allocations) >= 1
    assert "₹5,000.00" in html
    first = posting.allocations[0]
    assert f"#{first['number']}" in html


# --- Reversal request ---------------------------------------------------------------------


def test_reversal_request_needs_a_reason_and_creates_an_approval_request(client, posted):
    manager = UserFactory(role="Branch Manager", home_branch=posted["own"])
    login(client, manager)
    posting = posted["own_posting"]
    change = client.get(f"{POSTINGS}{posting.pk}/change/").content.decode()
    url = f"{POSTINGS}{posting.pk}/reversal/"
    assert f'href="{url}"' in change

    form = client.get(url)
    assert form.status_code == 200
    assert "₹5,000.00" in form.content.decode()
    empty = client.post(url, {"reason": "   "})
    assert empty.status_code == 200
    assert empty.context["form"].errors["reason"]
    assert not ApprovalRequest.objects.exists()

    done = client.post(url, {"reason": "Cheque bounced"}, follow=True)
    request = ApprovalRequest.objects.get()
    assert (request.kind, request.maker, request.reason) == (
        "PAYMENT_REVERSAL",
        manager,
        "Cheque bounced",
    )
    assert request.payload == {"txn_id": posting.txn_id}
    assert any("waits for a checker" in m for m in messages_of(done))
    page = done.content.decode()
    assert 'id="pending-reversal"' in page
    assert f'href="{url}"' not in page  # one pending request per posting

    again = client.post(url, {"reason": "again"}, follow=True)
    assert any("already pending" in m for m in messages_of(again))
    assert ApprovalRequest.objects.count() == 1


def test_only_reversal_makers_reach_the_form_and_only_for_their_branch(client, posted):
    staff = UserFactory(role="Branch Staff", home_branch=posted["own"])
    login(client, staff)
    own = posted["own_posting"]
    assert "/reversal/" not in client.get(f"{POSTINGS}{own.pk}/change/").content.decode()
    assert client.get(f"{POSTINGS}{own.pk}/reversal/").status_code == 403
    login(client, UserFactory(role="Branch Manager", home_branch=posted["own"]))
    other = posted["other_posting"]
    assert client.post(f"{POSTINGS}{other.pk}/reversal/", {"reason": "x"}).status_code == 302
    assert not ApprovalRequest.objects.exists()


# --- Transaction browser ----------------------------------------------------------------


def test_browser_finds_a_loans_transactions_newest_first(client, posted):
    second = ingest(posted["own_loan"], posted["principal"], amount="250.50")
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    response = client.get(BROWSER, {"loan_number": posted["own_loan"].loan_number.lower()})
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r["txn_id"] for r in rows] == [second, posted["own_txn"]]
    assert [r["status"] for r in rows] == ["RECEIVED", "POSTED"]
    html = response.content.decode()
    assert "₹250.50" in html and "₹5,000.00" in html
    assert "RC-OWN-1" in html and "Field agent 7" in html
    assert rows[1]["posting_url"] == f"{POSTINGS}{posted['own_posting'].pk}/change/"


def test_browser_never_shows_another_branchs_loan(client, posted):
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    response = client.get(BROWSER, {"loan_number": posted["other_loan"].loan_number})
    assert response.context["rows"] is None
    assert "that you may see" in response.content.decode()
    assert posted["other_txn"] not in response.content.decode()


def test_browser_by_id_shows_own_and_hides_another_branchs_transaction(client, posted):
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    own = client.get(BROWSER, {"txn_id": posted["own_txn"]})
    assert [r["txn_id"] for r in own.context["rows"]] == [posted["own_txn"]]
    other = client.get(BROWSER, {"txn_id": posted["other_txn"]})
    assert other.context["rows"] is None
    assert messages_of(other) == [f"No transaction {posted['other_txn']}."]
    assert "7,000.00" not in other.content.decode()


def test_browser_by_branch_and_day_offers_only_visible_branches(client, posted):
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    day = Posting.objects.get(txn_id=posted["own_txn"]).business_date
    page = client.get(BROWSER)
    choices = {str(b.pk) for b in page.context["form"].fields["branch"].queryset}
    assert choices == {str(posted["own"].pk)}
    assert f'value="{posted["other"].pk}"' not in page.content.decode()

    response = client.get(BROWSER, {"branch": posted["own"].pk, "business_date": day.isoformat()})
    assert [r["txn_id"] for r in response.context["rows"]] == [posted["own_txn"]]

    refused = client.get(BROWSER, {"branch": posted["other"].pk, "business_date": day.isoformat()})
    assert refused.context["rows"] is None
    assert "branch" in refused.context["form"].errors
    assert posted["other_txn"] not in refused.content.decode()


def test_browser_pages_with_a_signed_cursor(client, posted, monkeypatch):
    monkeypatch.setattr(TransactionRecordAdmin, "page_size", 2)
    loan = posted["own_loan"]
    later = [ingest(loan, posted["principal"], amount=f"{100 + i}.00") for i in range(2)]
    login(client, UserFactory(role="Finance"))
    first = client.get(BROWSER, {"loan_number": loan.loan_number})
    assert [r["txn_id"] for r in first.context["rows"]] == later[::-1]
    next_url = first.context["next_url"]
    assert next_url
    second = client.get(f"{BROWSER}{next_url}")
    assert [r["txn_id"] for r in second.context["rows"]] == [posted["own_txn"]]
    assert second.context["next_url"] is None

    cursor = re.search(r"cursor=([^&]+)", next_url).group(1)
    forged = client.get(BROWSER, {"loan_number": loan.loan_number, "cursor": cursor + "x"})
    assert any("not valid" in m for m in messages_of(forged))
    foreign = client.get(
        BROWSER, {"loan_number": posted["other_loan"].loan_number, "cursor": cursor}
    )
    assert any("not valid" in m for m in messages_of(foreign))  # bound to its own loan


def test_browser_needs_the_view_permission(client, posted):
    login(client, UserFactory(is_staff=True))
    assert client.get(BROWSER).status_code == 403
    assert client.get(QUEUE).status_code == 403
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    index = client.get("/admin/").content.decode()
    assert BROWSER in index and QUEUE in index
    assert "Transactions (DynamoDB)" in index and "Posting queue" in index


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_browser_shows_a_message_when_dynamodb_is_down(client, posted, settings):
    settings.DYNAMODB_MAX_RETRIES = 0
    login(client, UserFactory(role="Finance"))
    # Only the transactions table is unreachable: sessions live in DynamoDB too.
    TransactionItem.Meta.host = f"http://127.0.0.1:{closed_port()}"
    TransactionItem._connection = None
    try:
        by_loan = client.get(BROWSER, {"loan_number": posted["own_loan"].loan_number})
        by_id = client.get(BROWSER, {"txn_id": posted["own_txn"]})
        loan_page = client.get(f"/admin/loans/loanaccount/{posted['own_loan'].pk}/change/")
    finally:
        registry.configure(TransactionItem)
    assert by_loan.status_code == by_id.status_code == loan_page.status_code == 200
    assert any("unavailable" in m for m in messages_of(by_loan))
    assert any("unavailable" in m for m in messages_of(by_id))
    html = loan_page.content.decode()
    assert 'id="loan-payments"' in html and "payments store is unavailable" in html
    assert 'class="posting-row"' in html  # postings come from Postgres


# --- The loan page ------------------------------------------------------------------------


def test_loan_page_shows_its_transactions_and_postings(client, posted):
    pending = ingest(posted["own_loan"], posted["principal"], amount="321.00")
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    html = client.get(f"/admin/loans/loanaccount/{posted['own_loan'].pk}/change/").content.decode()
    assert 'id="loan-payments"' in html and 'id="loan-postings"' in html
    assert html.count('class="txn-row') == 2
    assert pending in html and "₹321.00" in html and "RECEIVED" in html
    assert f"{BROWSER}?txn_id={posted['own_txn']}" in html
    assert html.count('class="posting-row"') == 1
    assert posted["other_txn"] not in html


def test_loan_add_page_has_no_payments_section(client, posted):
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    html = client.get("/admin/loans/loanaccount/add/").content.decode()
    assert 'id="loan-payments"' not in html


# --- The posting queue --------------------------------------------------------------------


@pytest.fixture
def dead_letters(posted, settings):
    """One dead letter in each branch: the ledger was in maintenance."""
    settings.PAYMENTS_POSTING_MAX_ATTEMPTS = 1
    settings.PAYMENTS_POSTING_BACKOFF_SECONDS = 0
    LedgerSwitch.objects.create(pk=1, maintenance=True, reason="month-end close")
    own = ingest(posted["own_loan"], posted["principal"], amount="600.00")
    other = ingest(posted["other_loan"], posted["principal"], amount="700.00")
    assert payments_post_due() == {"dead": 2}
    LedgerSwitch.objects.filter(pk=1).update(maintenance=False)
    return own, other


def retrier(branch=None) -> User:
    """A member of staff who may retry dead letters (Finance's permission)."""
    if branch is None:
        return UserFactory(role="Finance")
    user = UserFactory(role="Branch Staff", home_branch=branch)
    user.user_permissions.add(Permission.objects.get(codename="retry_posting"))
    return User.objects.get(pk=user.pk)


def test_queue_tabs_show_ready_leased_and_dead_items_of_visible_branches(
    client, posted, dead_letters
):
    own_dead, other_dead = dead_letters
    ready = ingest(posted["own_loan"], posted["principal"], amount="10.00")
    leased = ingest(posted["own_loan"], posted["principal"], amount="20.00")
    ingest(posted["other_loan"], posted["principal"], amount="30.00")
    services.queue_claim_due(limit=10, worker="test-worker")  # leases all three
    QueueItem(ready).update(actions=queue_status_set(ready, "READY"))
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))

    def ids(status):
        response = client.get(QUEUE, {"status": status})
        assert response.status_code == 200
        return [row["txn_id"] for row in response.context["rows"]], response

    assert ids("READY")[0] == [ready]
    assert ids("LEASED")[0] == [leased]
    dead, response = ids("DEAD")
    assert dead == [own_dead]
    html = response.content.decode()
    assert "month-end close" in html  # the last error
    assert 'value="Retry"' not in html  # branch staff may not retry
    assert other_dead not in html
    assert ids("NONSENSE")[0] == [ready]  # back to the first tab


def test_retry_sends_a_dead_letter_back_and_it_posts(client, posted, dead_letters):
    own_dead, _ = dead_letters
    login(client, retrier())
    page = client.get(QUEUE, {"status": "DEAD"}).content.decode()
    assert page.count('value="Retry"') == 2
    response = client.post(f"{QUEUE}{own_dead}/retry/", follow=True)
    assert any("back in the queue" in m for m in messages_of(response))
    item = QueueItem.get(own_dead)
    assert (item.queue_status, item.attempts) == ("POSTING#READY", 0)
    assert payments_post_due() == {"posted": 1}
    assert Posting.objects.filter(txn_id=own_dead).exists()
    again = client.post(f"{QUEUE}{own_dead}/retry/", follow=True)
    assert any("Only a dead letter" in m for m in messages_of(again))


def test_retry_is_refused_without_permission_or_outside_the_scope(client, posted, dead_letters):
    own_dead, other_dead = dead_letters
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    assert client.post(f"{QUEUE}{own_dead}/retry/").status_code == 403
    login(client, retrier(posted["own"]))
    assert client.get(f"{QUEUE}{own_dead}/retry/").status_code == 405
    response = client.post(f"{QUEUE}{other_dead}/retry/", follow=True)
    assert any("that you may see" in m for m in messages_of(response))
    assert QueueItem.get(other_dead).queue_status == "POSTING#DEAD"
    assert QueueItem.get(own_dead).queue_status == "POSTING#DEAD"


def test_retry_needs_a_csrf_token(posted, dead_letters):
    own_dead, _ = dead_letters
    client = Client(enforce_csrf_checks=True)
    client.force_login(retrier())
    assert client.post(f"{QUEUE}{own_dead}/retry/").status_code == 403
    assert QueueItem.get(own_dead).queue_status == "POSTING#DEAD"
    page = client.get(QUEUE, {"status": "DEAD"}).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert (
        client.post(f"{QUEUE}{own_dead}/retry/", {"csrfmiddlewaretoken": token}).status_code == 302
    )
    assert QueueItem.get(own_dead).queue_status == "POSTING#READY"


# --- The ledger switch -------------------------------------------------------------------


def test_ledger_switch_is_one_row_toggled_with_a_reason(client, posted):
    operations = UserFactory(role="Operations", level=User.Level.HEAD_OFFICE)
    login(client, operations)
    response = client.get(SWITCH)
    assert response.status_code == 302
    assert response["Location"] == f"{SWITCH}1/change/"
    assert LedgerSwitch.objects.get().maintenance is False
    assert client.get(f"{SWITCH}add/").status_code == 403
    assert client.post(f"{SWITCH}1/delete/", {"post": "yes"}).status_code == 403

    refused = client.post(f"{SWITCH}1/change/", {"maintenance": "on", "reason": ""})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["reason"]
    assert LedgerSwitch.objects.get().maintenance is False

    on = client.post(f"{SWITCH}1/change/", {"maintenance": "on", "reason": "Core upgrade"})
    assert on.status_code == 302
    switch = LedgerSwitch.objects.get()
    assert (switch.maintenance, switch.reason) == (True, "Core upgrade")

    # switching off needs a reason of its own, not the old one
    same = client.post(f"{SWITCH}1/change/", {"reason": "Core upgrade"})
    assert same.status_code == 200
    assert LedgerSwitch.objects.get().maintenance is True
    off = client.post(f"{SWITCH}1/change/", {"reason": "Upgrade done"}, follow=True)
    assert any("postings resume" in m for m in messages_of(off))
    assert LedgerSwitch.objects.get().maintenance is False


def test_ledger_switch_is_read_only_for_branch_staff(client, posted):
    LedgerSwitch.objects.create(pk=1)
    login(client, UserFactory(role="Branch Staff", home_branch=posted["own"]))
    page = client.get(f"{SWITCH}1/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (
        client.post(f"{SWITCH}1/change/", {"maintenance": "on", "reason": "x"}).status_code == 403
    )
    assert LedgerSwitch.objects.get().maintenance is False


def test_amounts_are_shown_in_rupees_with_two_decimals(client, posted):
    ingest(posted["own_loan"], posted["principal"], amount="123456.7")
    login(client, UserFactory(role="Finance"))
    response = client.get(BROWSER, {"loan_number": posted["own_loan"].loan_number})
    assert "₹1,23,456.70" in response.content.decode()
    assert response.context["rows"][0]["amount"] == "123456.70"
    assert Decimal(response.context["rows"][0]["amount"]) == Decimal("123456.70")


def test_header_approvals_link_costs_one_query_on_the_approvals_table(client, posted, monkeypatch):
    sources = {k: v for k, v in approvals_selectors._sources.items() if k == "approval_requests"}
    monkeypatch.setattr(approvals_selectors, "_sources", sources)
    login(client, UserFactory(role="Finance"))
    with CaptureQueriesContext(connection) as queries:  # not the start page: its inbox panel
        html = client.get("/admin/payments/posting/").content.decode()
    assert 'id="approvals-link"' in html
    assert sum("approvals_approvalrequest" in q["sql"] for q in queries) == 1


def test_the_reversed_filter_splits_postings_by_reversal(client, posted):
    login(client, UserFactory(role="Finance"))
    posting = posted["own_posting"]

    def listed(value):
        response = client.get(POSTINGS, {"reversed": value})
        return {p.pk for p in response.context["cl"].result_list}

    assert posting.pk in listed("no") and posting.pk not in listed("yes")
    Posting.objects.filter(pk=posting.pk).update(reversed_at=timezone.now())
    assert posting.pk in listed("yes") and posting.pk not in listed("no")
