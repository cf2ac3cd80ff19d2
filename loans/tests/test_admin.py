"""Branch staff see and change only their branch's data, by any admin URL."""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import User
from loans.models import CoBorrower, Customer, CustomerBankAccount, LoanAccount
from tests.factories import (
    BranchFactory,
    LoanProductFactory,
    UserFactory,
    make_customer,
    make_loan,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def branch_loans(world):
    """The shared world's loans, each with a co-borrower and a bank account."""
    for loan in world.loans.values():
        CoBorrower.objects.create(
            loan=loan, customer=make_customer(branch=loan.branch), relationship="SPOUSE"
        )
        CustomerBankAccount.objects.create(
            customer=loan.customer,
            holder_name="X",
            bank_name="Bank",
            account_number="123456789012",
            ifsc="HDFC0001234",
        )
    return {
        "own": world.branches["own"],
        "other": world.branches["far"],
        "sibling": world.branches["near"],
        "area": world.branches["own"].area,
        "own_loan": world.loans["own"],
        "other_loan": world.loans["far"],
        "sibling_loan": world.loans["near"],
    }


def _objects(loan):
    """One object of each branch-owned model, reached from a loan."""
    return {
        "loanaccount": loan,
        "customer": loan.customer,
        "coborrower": loan.co_borrowers.get(),
        "customerbankaccount": loan.customer.bank_accounts.get(),
        "instalment": loan.instalments.first(),
    }


def _changelist_ids(client, model_name):
    response = client.get(reverse(f"admin:loans_{model_name}_changelist"))
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.mark.parametrize(
    "model_name", ["loanaccount", "customer", "coborrower", "customerbankaccount", "instalment"]
)
def test_branch_staff_changelist_shows_only_their_branch(client, branch_loans, model_name):
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch_loans["own"]))
    shown = _changelist_ids(client, model_name)
    own = _objects(branch_loans["own_loan"])[model_name]
    other = _objects(branch_loans["other_loan"])[model_name]
    assert own.pk in shown
    assert other.pk not in shown


@pytest.mark.parametrize(
    "model_name", ["loanaccount", "customer", "coborrower", "customerbankaccount", "instalment"]
)
def test_branch_staff_cannot_open_another_branchs_object(client, branch_loans, model_name):
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch_loans["own"]))
    own = _objects(branch_loans["own_loan"])[model_name]
    other = _objects(branch_loans["other_loan"])[model_name]
    assert client.get(reverse(f"admin:loans_{model_name}_change", args=[own.pk])).status_code == 200
    response = client.get(reverse(f"admin:loans_{model_name}_change", args=[other.pk]))
    assert response.status_code == 302  # "doesn't exist", back to the admin index
    history = client.get(reverse(f"admin:loans_{model_name}_history", args=[other.pk]))
    assert history.status_code in (302, 404)


def test_branch_staff_cannot_change_another_branchs_customer_by_post(client, branch_loans):
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch_loans["own"]))
    other = branch_loans["other_loan"].customer
    url = reverse("admin:loans_customer_change", args=[other.pk])
    response = client.post(
        url,
        {
            "name": "Hijacked",
            "mobile": other.mobile,
            "pan": other.pan,
            "branch": branch_loans["own"].pk,
        },
    )
    assert response.status_code == 302
    other.refresh_from_db()
    assert other.name != "Hijacked"


@pytest.mark.parametrize(
    ("model_name", "field_name", "target"),
    [("loanaccount", "customer", "customer"), ("coborrower", "loan", "loanaccount")],
)
def test_autocomplete_offers_only_the_users_branch(
    client, branch_loans, model_name, field_name, target
):
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch_loans["own"]))
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "loans", "model_name": model_name, "field_name": field_name, "term": ""},
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in response.json()["results"]}
    own = _objects(branch_loans["own_loan"])[target]
    other = _objects(branch_loans["other_loan"])[target]
    assert own.pk in ids
    assert other.pk not in ids


def test_area_manager_sees_the_branches_of_their_area(client, branch_loans):
    manager = UserFactory(
        level=User.Level.AREA, home_area=branch_loans["area"], role="Area Manager"
    )
    client.force_login(manager)
    shown = _changelist_ids(client, "loanaccount")
    assert {branch_loans["own_loan"].pk, branch_loans["sibling_loan"].pk} <= shown
    assert branch_loans["other_loan"].pk not in shown


def test_auditor_sees_everything_and_changes_nothing(client, branch_loans):
    auditor = UserFactory(role="Auditor", level=User.Level.BRANCH, home_branch=branch_loans["own"])
    client.force_login(auditor)
    shown = _changelist_ids(client, "loanaccount")
    assert {branch_loans["own_loan"].pk, branch_loans["other_loan"].pk} <= shown
    url = reverse("admin:loans_customer_change", args=[branch_loans["other_loan"].customer.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # read-only view
    response = client.post(url, {"name": "Changed"})
    assert response.status_code == 403
    assert client.get(reverse("admin:loans_loanaccount_add")).status_code == 403


def test_branch_staff_create_a_loan_with_its_schedule_from_the_admin(client, branch_loans):
    staff = UserFactory(role="Branch Staff", home_branch=branch_loans["own"])
    client.force_login(staff)
    customer = make_customer(branch=branch_loans["own"])
    product = LoanProductFactory()
    response = client.post(
        reverse("admin:loans_loanaccount_add"),
        {
            "customer": customer.pk,
            "product": product.pk,
            "branch": branch_loans["own"].pk,
            "sanctioned_amount": "150000.00",
            "disbursed_amount": "150000.00",
            "interest_rate": "",
            "tenure_months": "24",
            "due_day": "10",
            "disbursed_on": "2026-11-02",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    loan = LoanAccount.objects.get(customer=customer)
    assert loan.instalments.count() == 24
    assert loan.interest_rate == product.interest_rate
    assert loan.outstanding_principal == Decimal("150000.00")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tenure_months", "120", "allows a tenure of 6 to 60 months"),
        ("due_day", "31", "less than or equal to 28"),
        ("sanctioned_amount", "-100", "greater than or equal to"),
        ("sanctioned_amount", "ten lakh", "Enter a number"),
    ],
)
def test_bad_loan_input_gets_a_field_message_and_saves_nothing(
    client, branch_loans, field, value, message
):
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch_loans["own"]))
    customer = make_customer(branch=branch_loans["own"])
    data = {
        "customer": customer.pk,
        "product": LoanProductFactory().pk,
        "branch": branch_loans["own"].pk,
        "sanctioned_amount": "150000.00",
        "disbursed_amount": "100000.00",
        "tenure_months": "24",
        "due_day": "10",
        "disbursed_on": "2026-11-02",
        field: value,
    }
    before = LoanAccount.objects.count()
    response = client.post(reverse("admin:loans_loanaccount_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, []))
    assert LoanAccount.objects.count() == before


def test_branch_staff_cannot_book_a_loan_for_another_branchs_customer(client, branch_loans):
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch_loans["own"]))
    foreign = branch_loans["other_loan"].customer
    response = client.post(
        reverse("admin:loans_loanaccount_add"),
        {
            "customer": foreign.pk,
            "product": LoanProductFactory().pk,
            "branch": branch_loans["own"].pk,
            "sanctioned_amount": "150000.00",
            "disbursed_amount": "100000.00",
            "tenure_months": "24",
            "due_day": "10",
            "disbursed_on": "2026-11-02",
        },
    )
    assert response.status_code == 200
    assert "customer" in response.context["adminform"].form.errors
    assert not LoanAccount.objects.filter(customer=foreign).exclude(
        pk=branch_loans["other_loan"].pk
    )


def test_lists_show_pii_masked(client, branch_loans):
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch_loans["own"]))
    customer = branch_loans["own_loan"].customer
    page = client.get(reverse("admin:loans_customer_changelist")).content.decode()
    assert customer.pan not in page
    assert customer.mobile not in page
    assert customer.pan[-4:] in page


def test_customer_search_finds_by_exact_number_and_mobile(client, branch_loans):
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch_loans["own"]))
    customer = branch_loans["own_loan"].customer
    url = reverse("admin:loans_customer_changelist")
    for term in (customer.customer_number, customer.mobile, customer.name[:6]):
        response = client.get(url, {"q": term})
        assert customer.pk in {c.pk for c in response.context["cl"].result_list}
    response = client.get(url, {"q": branch_loans["other_loan"].customer.customer_number})
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize("query", [{}, {"status__exact": "ACTIVE"}, {"q": "LN0000000001"}])
def test_loan_changelist_query_count_does_not_grow_with_rows(
    client, branch_loans, django_assert_max_num_queries, query
):
    client.force_login(UserFactory(role="Auditor"))
    for _ in range(5):
        make_loan(branch=branch_loans["own"])
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:loans_loanaccount_changelist"), query)
    assert response.status_code == 200


def test_loan_changelist_never_counts_the_whole_table(
    client, branch_loans, django_assert_num_queries
):
    client.force_login(UserFactory(role="Auditor"))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("admin:loans_loanaccount_changelist"))
        # the facet counts ("Show counts") are never offered nor run on request
        client.get(reverse("admin:loans_loanaccount_changelist"), {"_facets": "True"})
    assert "Show counts" not in page.content.decode()
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the bounded count is expected"
    assert all("LIMIT" in sql.upper() for sql in counts), counts
    assert not any("DISTINCT" in q["sql"].upper() for q in queries)
    assert Customer.objects.exists()


def _branch_choices(response) -> set[str]:
    [branch_filter] = [f for f in response.context["cl"].filter_specs if f.title == "branch"]
    return {label for _, label in branch_filter.lookup_choices}


def test_the_branch_filter_offers_active_visible_branches_and_a_chosen_closed_one(
    client, branch_loans
):
    closed = BranchFactory(area=branch_loans["area"], is_active=False)
    closed_loan = make_loan(branch=closed)
    manager = UserFactory(
        level=User.Level.AREA, home_area=branch_loans["area"], role="Area Manager"
    )
    client.force_login(manager)
    url = reverse("admin:loans_loanaccount_changelist")

    offered = _branch_choices(client.get(url))
    assert offered == {str(branch_loans["own"]), str(branch_loans["sibling"])}  # not another area's

    chosen = client.get(url, {"branch__id__exact": closed.pk})
    assert str(closed) in _branch_choices(chosen)
    assert [loan.pk for loan in chosen.context["cl"].result_list] == [closed_loan.pk]
    # another area's branch chosen by URL is neither offered nor shown
    foreign = client.get(url, {"branch__id__exact": branch_loans["other"].pk})
    assert str(branch_loans["other"]) not in _branch_choices(foreign)
    assert list(foreign.context["cl"].result_list) == []


def test_a_search_that_fits_on_a_page_runs_once_and_a_longer_one_pages(client, branch_loans):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    own = branch_loans["own"]
    few = [make_loan(customer=make_customer(branch=own, name="Zoya Qureshi")) for _ in range(3)]
    many = [make_loan(customer=make_customer(branch=own, name="Yash Rane")) for _ in range(53)]
    client.force_login(UserFactory(role="Branch Staff", home_branch=own))
    url = reverse("admin:loans_loanaccount_changelist")

    def searched(query):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, query)
        # a search over the table, not a fetch of rows by their ids
        names = [
            q["sql"]
            for q in queries
            if 'UPPER("loans_customer"."name"' in q["sql"]
            and '"loans_loanaccount"."id" IN' not in q["sql"]
        ]
        return response.context["cl"], names

    cl, runs = searched({"q": "zoya qureshi"})
    assert sorted(obj.pk for obj in cl.result_list) == sorted(loan.pk for loan in few)
    assert cl.result_count == 3 and len(runs) == 1  # no second search for the rows

    cl, runs = searched({"q": "yash rane"})
    assert cl.result_count == 53 and cl.multi_page
    first = [obj.pk for obj in cl.result_list]
    assert first == sorted((loan.pk for loan in many), reverse=True)[: cl.list_per_page]
    assert len(runs) == 2  # page 1's ids (and one more), then the bounded count
    cl, _ = searched({"q": "yash rane", "p": "2"})
    rest = sorted((loan.pk for loan in many), reverse=True)[cl.list_per_page :]
    assert [obj.pk for obj in cl.result_list] == rest[: cl.list_per_page]
