"""One visibility rule for every read of a transaction, through the admin and the API alike.

A loan moved from branch A to branch B: A's staff and clients see what A collected (its
DCR counted it), by loan, by branch and day and by id, and nothing recorded after the move;
B's see the loan's whole history through the loan (and by id), but not A's days.
"""

import pytest

from api import scopes
from core.clock import parse_iso
from loans.models import LoanAccount
from payments.admin import TransactionRecordAdmin
from payments.ddb_models import TransactionItem
from payments.tests.test_admin import ingest
from tests.factories import BranchFactory, UserFactory, key_header, make_api_client, make_loan

pytestmark = pytest.mark.django_db

BROWSER = "/admin/payments/transactionrecord/"
API = "/api/v1/transactions"


@pytest.fixture
def moved():
    """Two payments at A, the loan moved to B, two payments at B (newest last)."""
    a, b, c = BranchFactory(), BranchFactory(), BranchFactory()
    loan = make_loan(branch=a)
    principal = UserFactory(is_superuser=True)
    at_a = [ingest(loan, principal, "101.00"), ingest(loan, principal, "102.00")]
    LoanAccount.objects.filter(pk=loan.pk).update(branch=b)
    loan.refresh_from_db()
    at_b = [ingest(loan, principal, "201.00"), ingest(loan, principal, "202.00")]
    days = {t: TransactionItem.get(t).business_date for t in at_a + at_b}
    return {"a": a, "b": b, "c": c, "loan": loan, "at_a": at_a, "at_b": at_b, "days": days}


def _browse(client, user, **params):
    client.force_login(user)
    response = client.get(BROWSER, params)
    assert response.status_code == 200
    rows = response.context["rows"]
    return None if rows is None else [r["txn_id"] for r in rows], response


def _api(client, key, path="", **params):
    return client.get(f"{API}{path}", params, **key_header(key))


def test_staff_of_each_branch_see_the_rule_by_loan_day_and_id(client, moved):
    at_a, at_b, loan = moved["at_a"], moved["at_b"], moved["loan"]
    of_a, of_b, of_c = (
        UserFactory(role="Branch Staff", home_branch=moved["a"]),
        UserFactory(role="Branch Staff", home_branch=moved["b"]),
        UserFactory(role="Branch Staff", home_branch=moved["c"]),
    )

    # by loan: B the whole history, A what it collected, C nothing (not found)
    assert _browse(client, of_b, loan_number=loan.loan_number)[0] == at_b[::-1] + at_a[::-1]
    assert _browse(client, of_a, loan_number=loan.loan_number)[0] == at_a[::-1]
    rows, response = _browse(client, of_c, loan_number=loan.loan_number)
    assert rows is None and "that you may see" in response.content.decode()
    assert "loan_number" in response.context["form"].errors

    # by branch and day: each branch's day holds what it recorded; A's day is not B's
    day_a = moved["days"][at_a[0]]
    assert _browse(client, of_a, branch=moved["a"].pk, business_date=day_a)[0] == at_a[::-1]
    day_b = moved["days"][at_b[0]]
    assert _browse(client, of_b, branch=moved["b"].pk, business_date=day_b)[0] == at_b[::-1]
    rows, response = _browse(client, of_b, branch=moved["a"].pk, business_date=day_a)
    assert rows is None and "branch" in response.context["form"].errors

    # by id: A its own only, B all the loan's
    assert _browse(client, of_a, txn_id=at_a[0])[0] == [at_a[0]]
    assert _browse(client, of_a, txn_id=at_b[0])[0] is None
    assert _browse(client, of_b, txn_id=at_a[0])[0] == [at_a[0]]
    assert _browse(client, of_c, txn_id=at_a[0])[0] is None

    # the loan's page (B holds the loan) lists the whole history
    client.force_login(of_b)
    html = client.get(f"/admin/loans/loanaccount/{loan.pk}/change/").content.decode()
    assert all(t in html for t in at_a + at_b)


def test_staff_pages_of_a_moved_loan_hold_only_visible_rows(client, moved, monkeypatch):
    monkeypatch.setattr(TransactionRecordAdmin, "page_size", 1)
    client.force_login(UserFactory(role="Branch Staff", home_branch=moved["a"]))
    first = client.get(BROWSER, {"loan_number": moved["loan"].loan_number})
    assert [r["txn_id"] for r in first.context["rows"]] == [moved["at_a"][1]]
    second = client.get(f"{BROWSER}{first.context['next_url']}")
    assert [r["txn_id"] for r in second.context["rows"]] == [moved["at_a"][0]]
    assert second.context["next_url"] is None


def test_api_clients_of_each_branch_see_the_same_rule(client, moved):
    at_a, at_b, number = moved["at_a"], moved["at_b"], moved["loan"].loan_number
    read = (scopes.TRANSACTIONS_READ,)
    _, of_a = make_api_client(scopes=read, branches=[moved["a"]])
    _, of_b = make_api_client(scopes=read, branches=[moved["b"]])
    _, of_c = make_api_client(scopes=read, branches=[moved["c"]])

    def ids(response):
        assert response.status_code == 200, response.content
        return [r["txn_id"] for r in response.json()["results"]]

    # by loan
    assert ids(_api(client, of_b, loan_account=number)) == at_b[::-1] + at_a[::-1]
    assert ids(_api(client, of_a, loan_account=number)) == at_a[::-1]
    missing = _api(client, of_c, loan_account=number)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "loan_not_found"
    # pages of what A may see: full pages, then none
    first = _api(client, of_a, loan_account=number, page_size=1).json()
    assert [r["txn_id"] for r in first["results"]] == [at_a[1]]
    rest = _api(client, of_a, loan_account=number, page_size=1, cursor=first["next"]).json()
    assert [r["txn_id"] for r in rest["results"]] == [at_a[0]] and rest["next"] is None

    # by branch and day
    day_a, day_b = moved["days"][at_a[0]], moved["days"][at_b[0]]
    assert ids(_api(client, of_a, branch=moved["a"].code, business_date=day_a)) == at_a[::-1]
    assert ids(_api(client, of_b, branch=moved["b"].code, business_date=day_b)) == at_b[::-1]
    refused = _api(client, of_b, branch=moved["a"].code, business_date=day_a)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "branch_not_found"

    # by id
    assert _api(client, of_a, f"/{at_a[0]}").status_code == 200
    assert _api(client, of_a, f"/{at_b[0]}").status_code == 404
    assert _api(client, of_b, f"/{at_a[0]}").json()["amount"] == "101.00"
    assert _api(client, of_c, f"/{at_a[0]}").status_code == 404
    # one id check: a ULID in any case is the same id; anything else is no transaction
    assert _api(client, of_a, f"/{at_a[0].lower()}").json()["txn_id"] == at_a[0]


def test_a_loan_s_transactions_since_a_moment_are_the_newer_ones_only(moved):
    from payments.selectors import transactions_for_loan

    loan, a_staff = moved["loan"], UserFactory(role="Branch Staff", home_branch=moved["a"])
    items = {t: TransactionItem.get(t) for t in moved["at_a"] + moved["at_b"]}
    boundary = sorted(items.values(), key=lambda t: t.created_at)[2]  # the first at B
    since = parse_iso(boundary.created_at)
    superuser = UserFactory(is_superuser=True)
    rows = transactions_for_loan(loan=loan, user=superuser, since=since).rows
    assert [r["txn_id"] for r in rows] == list(reversed(moved["at_b"]))
    everything = transactions_for_loan(loan=loan, user=superuser).rows
    assert len(everything) == 4
    # A's staff see only A's payments, and none is that new: an empty page, not "not found"
    assert transactions_for_loan(loan=loan, user=a_staff, since=since).rows == []
