"""GET /api/v1/loans/ and /api/v1/loans/{loan_number}: scoped, filtered, PII-free."""

from decimal import Decimal

import pytest

from api import scopes
from loans.models import LoanAccount
from tests.factories import (
    LoanProductFactory,
    UserFactory,
    key_header,
    make_api_client,
    make_customer,
    make_loan,
)

pytestmark = pytest.mark.django_db

LOANS = "/api/v1/loans/"


@pytest.fixture
def loan_book(world):
    """The shared world's branches and loans, and a gold loan at ``pune``."""
    pune, thane, chennai = (world.branches[where] for where in ("own", "near", "far"))
    gold = LoanProductFactory(code="GOLD", name="Gold loan", min_tenure_months=3)
    return {
        "pune": pune,
        "thane": thane,
        "chennai": chennai,
        "pune_loan": world.loans["own"],
        "pune_gold": make_loan(branch=pune, product=gold, tenure_months=6),
        "thane_loan": world.loans["near"],
        "chennai_loan": world.loans["far"],
    }


def _numbers(response):
    assert response.status_code == 200, response.content
    return {row["loan_number"] for row in response.json()["results"]}


def test_a_client_sees_the_loans_of_its_branches_only(client, loan_book):
    _, raw_key = make_api_client(branches=[loan_book["pune"], loan_book["thane"]])
    seen = _numbers(client.get(LOANS, **key_header(raw_key)))
    assert seen == {loan_book[n].loan_number for n in ("pune_loan", "pune_gold", "thane_loan")}
    own = client.get(LOANS + loan_book["thane_loan"].loan_number, **key_header(raw_key))
    assert own.status_code == 200
    other = client.get(LOANS + loan_book["chennai_loan"].loan_number, **key_header(raw_key))
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"


def test_a_client_with_all_branches_sees_every_loan(client, loan_book):
    _, raw_key = make_api_client(all_branches=True)
    assert _numbers(client.get(LOANS, **key_header(raw_key))) == set(
        LoanAccount.objects.values_list("loan_number", flat=True)
    )
    other = client.get(LOANS + loan_book["chennai_loan"].loan_number, **key_header(raw_key))
    assert other.status_code == 200


def test_staff_sessions_are_scoped_by_their_place_in_the_hierarchy(client, loan_book):
    client.force_login(UserFactory(role="Branch Staff", home_branch=loan_book["chennai"]))
    assert _numbers(client.get(LOANS)) == {loan_book["chennai_loan"].loan_number}
    assert client.get(LOANS + loan_book["pune_loan"].loan_number).status_code == 404


def test_filters_by_branch_status_and_product_code(client, loan_book):
    _, raw_key = make_api_client(all_branches=True)
    auth = key_header(raw_key)
    pune = {loan_book["pune_loan"].loan_number, loan_book["pune_gold"].loan_number}
    assert _numbers(client.get(LOANS, {"branch": loan_book["pune"].code}, **auth)) == pune
    assert _numbers(client.get(LOANS, {"product": "GOLD"}, **auth)) == {
        loan_book["pune_gold"].loan_number
    }
    LoanAccount.objects.filter(pk=loan_book["thane_loan"].pk).update(status="CLOSED")
    assert _numbers(client.get(LOANS, {"status": "CLOSED"}, **auth)) == {
        loan_book["thane_loan"].loan_number
    }
    bad = client.get(LOANS, {"status": "NOPE"}, **auth)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid"
    assert list(bad.json()["error"]["fields"]) == ["status"]


def test_a_loan_shows_amounts_as_two_decimal_strings_and_no_pii(client):
    customer = make_customer(name="Asha Patil", mobile="9876543210", pan="ABCPE1234F")
    loan = make_loan(customer=customer, sanctioned_amount=Decimal("150000"))
    _, raw_key = make_api_client(branches=[loan.branch])
    response = client.get(LOANS + loan.loan_number, **key_header(raw_key))
    body = response.json()
    assert body["customer_name"] == "Asha Patil"
    assert body["customer_number"] == customer.customer_number
    assert body["branch_code"] == loan.branch.code
    assert body["sanctioned_amount"] == "150000.00"
    assert body["disbursed_amount"] == "100000.00"
    assert body["interest_rate"] == "18.00"
    assert body["total_outstanding"] == f"{loan.total_outstanding:.2f}"
    money = [v for k, v in body.items() if k.endswith(("_amount", "outstanding", "_principal"))]
    assert money and all(isinstance(v, str) and v.split(".")[1].__len__() == 2 for v in money)
    text = response.content.decode()
    for pii in ("9876543210", "ABCPE1234F", '"mobile', '"pan'):
        assert pii not in text


def test_lists_are_paginated_by_page_number(client, loan_book):
    _, raw_key = make_api_client(all_branches=True)
    page = client.get(LOANS, {"page_size": 2}, **key_header(raw_key)).json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    assert len(client.get(page["next"], **key_header(raw_key)).json()["results"]) == 2
    huge = client.get(LOANS, {"page_size": 10_000}, **key_header(raw_key))
    assert huge.status_code == 200  # capped at 200, not refused
    beyond = client.get(LOANS, {"page": 99}, **key_header(raw_key))
    assert beyond.status_code == 404 and beyond.json()["error"]["code"] == "not_found"


def test_the_list_costs_a_fixed_number_of_queries(client, loan_book, django_assert_num_queries):
    _, raw_key = make_api_client(branches=[loan_book["pune"], loan_book["thane"]])
    client.get(LOANS, **key_header(raw_key))  # records last use
    for _ in range(5):
        make_loan(branch=loan_book["pune"])
    # the client by key prefix, the count, the page (its branches a subquery of each)
    with django_assert_num_queries(3):
        response = client.get(LOANS, **key_header(raw_key))
    assert len(response.json()["results"]) == 8


def test_a_client_of_a_banking_partner_needs_loans_read_too(client, loan_book):
    from tests.factories import BankingPartnerFactory

    _, raw_key = make_api_client(
        kind="BANKING_PARTNER",
        banking_partner=BankingPartnerFactory(),
        scopes=[scopes.PARTNER_RESULTS],
        all_branches=True,
    )
    assert client.get(LOANS, **key_header(raw_key)).status_code == 403


def test_a_loan_number_postgres_cannot_compare_is_a_404_not_a_server_error(client, loan_book):
    _, raw_key = make_api_client(all_branches=True)
    for number in ("LN%00", "LN%C3%A9", "LN 1"):
        response = client.get(LOANS + number, **key_header(raw_key))
        assert response.status_code == 404, number
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("size", ["null", "\u0661", "0", ""])
def test_a_page_size_that_is_not_a_whole_number_is_a_400(client, loan_book, size):
    _, raw_key = make_api_client(all_branches=True)
    response = client.get(LOANS, {"page_size": size}, **key_header(raw_key))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == ["page_size"]


def test_the_next_link_names_the_page_size_once(client, loan_book):
    _, raw_key = make_api_client(all_branches=True)
    twice = client.get(f"{LOANS}?page_size=1&page_size=1", **key_header(raw_key))
    assert twice.status_code == 400
    page = client.get(LOANS, {"page_size": "1"}, **key_header(raw_key)).json()
    assert page["next"].count("page_size=") == 1
    assert client.get(page["next"], **key_header(raw_key)).status_code == 200


def test_a_page_number_in_other_digits_is_no_page(client, loan_book):
    _, raw_key = make_api_client(all_branches=True)
    response = client.get(LOANS, {"page": "\u0661"}, **key_header(raw_key))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.get(LOANS, {"page": "1"}, **key_header(raw_key)).status_code == 200
