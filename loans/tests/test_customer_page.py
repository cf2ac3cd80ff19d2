"""The customer at a glance (their loans with dues, co-borrowed and guaranteed loans,
mandates, recent receipts, notifications), scoped and in a fixed number of queries; and the
loan and customer searches by loan number, customer number, PAN, mobile and name."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loans.models import CoBorrower, LoanAccount
from tests.factories import draft_mandate, make_customer, make_loan, pay, queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def glance(world):
    """A customer of ``own`` with two loans (one overdue), a guaranteed loan at ``own``, a
    co-borrowed loan at ``far`` (not for own's eyes), a mandate, a payment, an SMS."""
    own = world.branches["own"]
    customer = make_customer(branch=own, name="Sunita Deshmukh", mobile="9822012345")
    first = make_loan(customer=customer)
    second = make_loan(
        customer=customer,
        sanctioned_amount=Decimal("50000.00"),
        disbursed_amount=Decimal("50000.00"),
    )
    LoanAccount.objects.filter(pk=second.pk).update(
        overdue_principal=Decimal("4000.00"),
        overdue_interest=Decimal("750.50"),
        dpd=45,
        bucket=LoanAccount.Bucket.SMA1,
        dues_as_of=datetime.date(2026, 12, 1),
    )
    guaranteed = make_loan(branch=own)
    CoBorrower.objects.create(
        loan=guaranteed, customer=customer, relationship="SIBLING", role="GUARANTOR"
    )
    hidden = make_loan(branch=world.branches["far"])
    CoBorrower.objects.create(loan=hidden, customer=customer, relationship="SPOUSE")
    draft_mandate(first, world.users["BS"])
    pay(first, "2500.00")
    queued(recipient="9822012345", template_code="receipt")
    return {
        "customer": customer,
        "first": first,
        "second": second,
        "guaranteed": guaranteed,
        "hidden": hidden,
    }


def _page(client, customer):
    response = client.get(reverse("admin:loans_customer_change", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_customers_page_shows_loans_dues_co_borrowings_mandates_receipts_and_sms(
    client, world, glance
):
    client.force_login(world.users["BS"])
    body = _page(client, glance["customer"])
    assert glance["first"].loan_number in body and glance["second"].loan_number in body
    assert "₹4,750.50" in body  # arrears of the second loan, Indian format
    assert "SMA-1 (31-60)" in body and ">45<" in body
    assert f"{reverse('desk:collect')}?loan={glance['second'].loan_number}" in body
    assert "Guarantor (sibling)" in body and glance["guaranteed"].loan_number in body
    assert glance["hidden"].loan_number not in body  # co-borrowed at another branch
    assert 'id="customer-mandates"' in body and "State Bank of India" in body
    assert "RCPT-" in body and "₹2,500.00" in body and " IST" in body
    assert 'id="customer-notifications"' in body and "XXXXXX2345" in body
    assert "9822012345" in body  # the branch's own page shows the mobile (read-only)


def test_a_branch_user_cannot_open_another_branchs_customer(client, world, glance):
    client.force_login(world.users["BS"])
    foreign = world.loans["far"].customer
    response = client.get(reverse("admin:loans_customer_change", args=[foreign.pk]))
    assert response.status_code == 302
    url = reverse("admin:loans_customer_request_change", args=[foreign.pk])
    assert client.get(f"{url}?change=mobile").status_code == 302


def test_the_customers_page_costs_the_same_queries_with_twice_the_loans(client, world, glance):
    client.force_login(world.users["BS"])
    customer = glance["customer"]

    def count() -> int:
        _page(client, customer)  # warms the caches (content types, the ledger switch)
        with CaptureQueriesContext(connection) as queries:
            _page(client, customer)
        return len(queries)

    before = count()
    for _ in range(3):
        loan = make_loan(customer=customer)
        draft_mandate(loan, world.users["BS"])
        CoBorrower.objects.create(
            loan=make_loan(branch=customer.branch), customer=customer, relationship="PARENT"
        )
    assert count() == before


@pytest.mark.parametrize(
    "term",
    [
        "9822012345",
        "+91 98220 12345",
        "+91-98220-12345",
        "098220 12345",
        "919822012345",
        "abcpd1234k",
        "ABCPD 1234 K",
        "sunita",
        "Deshm",
    ],
)
def test_loan_and_customer_search_find_by_mobile_pan_and_name(client, world, term):
    own = world.branches["own"]
    customer = make_customer(
        branch=own, name="Sunita Deshmukh", mobile="9822012345", pan="ABCPD1234K"
    )
    loan = make_loan(customer=customer)
    other = make_loan(branch=own)
    client.force_login(world.users["BS"])
    loans = client.get(reverse("admin:loans_loanaccount_changelist"), {"q": term})
    shown = {obj.pk for obj in loans.context["cl"].result_list}
    assert loan.pk in shown and other.pk not in shown
    customers = client.get(reverse("admin:loans_customer_changelist"), {"q": term})
    assert [obj.pk for obj in customers.context["cl"].result_list] == [customer.pk]


def test_search_by_loan_and_customer_number_and_never_across_branches(client, world):
    foreign = make_customer(branch=world.branches["far"], mobile="9822099999", pan="FFFPF9999F")
    make_loan(customer=foreign)
    loan = world.loans["own"]
    client.force_login(world.users["BS"])
    url = reverse("admin:loans_loanaccount_changelist")
    for term, expected in (
        (loan.loan_number.lower(), [loan.pk]),
        (loan.customer.customer_number, [loan.pk]),
        ("98220 99999", []),
        ("fffpf9999f", []),
    ):
        shown = [obj.pk for obj in client.get(url, {"q": term}).context["cl"].result_list]
        assert shown == expected, term


def test_pan_and_mobile_searches_use_their_indexes(world):
    """EXPLAIN of the searches as the lists run them (newest first), over enough customers
    for the planner to choose: the customer's PAN and mobile indexes."""
    from loans.admin import customer_key_lookup
    from loans.models import Customer

    branch = world.branches["own"]
    Customer.objects.bulk_create(
        Customer(
            customer_number=f"C9{n:09d}",
            name=f"Bulk {n}",
            mobile=f"7{n:09d}",
            pan=f"BULKP{n:04d}Z",
            branch=branch,
        )
        for n in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE loans_customer")
        cursor.execute("ANALYZE loans_loanaccount")
    for term, index in (("bulkp1234z", "customer_pan"), ("+91 70000 01234", "customer_mobile")):
        customers = Customer.objects.filter(**customer_key_lookup(term)).order_by("-id")[:25]
        assert index in customers.explain(), customers.explain()
        lookup = customer_key_lookup(term, "customer__")
        loans = LoanAccount.objects.filter(**lookup).order_by("-id")[:25]
        assert index in loans.explain(), loans.explain()
