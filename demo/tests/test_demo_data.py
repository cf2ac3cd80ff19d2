"""The demo data set, loaded at a small scale through the management commands."""

import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db.models import Count, F, Sum
from django.test import Client
from django.utils import timezone

from accounts.models import Area, Branch, Region, User
from accounts.scoping import visible_branch_ids
from demo import services as demo
from loans import services
from loans.dues import bucket_for, dues_of
from loans.models import (
    BankingPartner,
    CoBorrower,
    CollectionAccount,
    Customer,
    CustomerBankAccount,
    Instalment,
    LoanAccount,
    LoanProduct,
)
from loans.schedule import emi, instalment_count

pytestmark = pytest.mark.django_db

CUSTOMERS, LOANS, SCHEDULES = 300, 400, 250


def _load(**options) -> str:
    out = StringIO()
    options = {"customers": CUSTOMERS, "loans": LOANS, "schedules": SCHEDULES, **options}
    call_command("demo_data", seed=7, verbosity=0, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def demo_set():
    return _load()


def test_demo_data_builds_an_nbfc_with_the_requested_numbers(demo_set):
    assert Region.objects.filter(code__in=["WEST", "SOUTH", "NORTH"]).count() == 3
    assert Area.objects.count() == 6
    branches = Branch.objects.filter(code__in=demo.BRANCH_CODES)
    assert branches.count() == 12
    assert all(b.cutoff_time.hour == 18 and b.cash_in_hand_limit > 0 for b in branches)
    assert User.objects.filter(username__in=[s.username for s in demo.STAFF]).count() == 40
    assert LoanProduct.objects.count() >= 3
    assert BankingPartner.objects.count() == 2
    assert CollectionAccount.objects.values("partner").distinct().count() == 2
    assert Customer.objects.count() == CUSTOMERS
    assert LoanAccount.objects.count() == LOANS
    assert CustomerBankAccount.objects.filter(is_primary=True).count() == CUSTOMERS
    assert not Customer.objects.annotate(n=Count("bank_accounts")).exclude(n=1).exists()
    assert CoBorrower.objects.exists()
    assert Branch.objects.annotate(n=Count("customers")).filter(n=0).count() == 0
    assert f"added {CUSTOMERS} customers" in demo_set


def test_every_demo_user_logs_in_with_the_demo_password(demo_set):
    for spec in demo.STAFF:
        client = Client()
        response = client.post(
            "/admin/login/?next=/admin/",
            {"username": spec.username, "password": demo.DEMO_PASSWORD},
        )
        assert response.status_code == 302, spec.username
        assert response["Location"] == "/admin/"


def test_each_demo_user_has_their_role_and_place_in_the_hierarchy(demo_set):
    users = {u.username: u for u in User.objects.prefetch_related("groups")}
    branches_in = {"BRANCH": 1, "AREA": 2, "REGION": 4}
    for spec in demo.STAFF:
        user = users[spec.username]
        assert [g.name for g in user.groups.all()] == [spec.role], spec.username
        assert user.is_staff and user.is_active and not user.is_superuser
        assert user.level == spec.level
        home = {
            "BRANCH": user.home_branch and user.home_branch.code,
            "AREA": user.home_area and user.home_area.code,
            "REGION": user.home_region and user.home_region.code,
            "HEAD_OFFICE": "",
        }[spec.level]
        assert home == spec.home, spec.username
        visible = visible_branch_ids(user)
        if spec.level == "HEAD_OFFICE":
            assert visible is None
        else:
            assert len(visible) == branches_in[spec.level], spec.username
    roles = {spec.role for spec in demo.STAFF}
    assert roles == {
        "Branch Staff", "Branch Manager", "Area Manager", "Operations", "Finance",
        "Auditor", "Admin",
    }  # fmt: skip
    assert users["staff.pune1"].home_branch.code == "PUN01"
    assert users["manager.pune1"].groups.get().name == "Branch Manager"


def test_schedules_add_up_to_the_disbursed_amounts(demo_set):
    scheduled = LoanAccount.objects.annotate(
        n=Count("instalments"),
        principal=Sum("instalments__principal_due"),
        interest=Sum("instalments__interest_due"),
        principal_paid=Sum("instalments__principal_paid"),
        interest_paid=Sum("instalments__interest_paid"),
    ).select_related("product")
    with_schedule = [loan for loan in scheduled if loan.n]
    assert len(with_schedule) == SCHEDULES
    for loan in scheduled:
        frequency = loan.product.emi_frequency
        periods = instalment_count(loan.tenure_months, frequency)
        assert loan.emi_amount == emi(loan.disbursed_amount, loan.interest_rate, periods, frequency)
        assert loan.outstanding_charges == Decimal("0.00")
        if loan.n:
            assert loan.n == periods
            assert loan.principal == loan.disbursed_amount
            # the opening history: what is owed is what the instalments have not been paid
            assert loan.outstanding_principal == loan.principal - loan.principal_paid
            assert loan.outstanding_interest == loan.interest - loan.interest_paid
        else:
            assert loan.outstanding_principal == loan.disbursed_amount
            assert loan.outstanding_interest == Decimal("0.00")
    # the schedule sample is the first loans of the demo set
    first = LoanAccount.objects.order_by("id")[:SCHEDULES]
    assert all(loan.instalments.exists() for loan in first)


def test_the_opening_history_paid_the_oldest_instalments_fallen_due(demo_set):
    today = timezone.localdate()
    paid = Instalment.objects.filter(status="PAID")
    assert paid.exists() and Instalment.objects.filter(status="DUE").exists()
    assert not paid.filter(due_date__gte=today).exists()
    assert not paid.exclude(principal_paid=F("principal_due")).exists()
    assert not Instalment.objects.exclude(status__in=["PAID", "DUE"]).exists()
    for loan in LoanAccount.objects.filter(instalments__status="PAID").distinct():
        statuses = list(loan.instalments.order_by("number").values_list("status", flat=True))
        assert statuses == sorted(statuses, key=lambda s: s != "PAID"), loan.loan_number
        last_paid = loan.instalments.filter(status="PAID").order_by("-number").first()
        assert loan.last_payment_date == last_paid.due_date
        if "DUE" not in statuses and loan.status != "WRITTEN_OFF":
            assert loan.status == "CLOSED" and loan.total_outstanding == 0
    # the scheduled loans spread over the buckets, most of them current
    buckets = Counter(
        LoanAccount.objects.filter(status="ACTIVE", instalments__isnull=False)
        .distinct()
        .values_list("bucket", flat=True)
    )
    assert buckets["CURRENT"] > sum(buckets.values()) / 2
    assert len(buckets) >= 4


def test_demo_loans_have_dues_from_their_schedules_or_a_plausible_spread(demo_set):
    today = timezone.localdate()
    active = LoanAccount.objects.filter(status="ACTIVE").prefetch_related("instalments")
    spread = Counter()
    for loan in active:
        assert loan.dues_as_of == today
        assert loan.bucket == bucket_for(loan.dpd)
        if loan.instalments.all():  # refreshed from the schedule, as the nightly does
            dues = dues_of(loan.instalments.all(), today)
            assert (loan.dpd, loan.overdue_amount, loan.next_due_date) == (
                dues.dpd,
                dues.overdue_amount,
                dues.next_due_date,
            )
        else:
            spread[loan.bucket] += 1
            assert (loan.dpd > 0) == (loan.overdue_amount > 0)
    # the loans without a schedule are mostly current, some in every other bucket
    assert set(spread) == {"CURRENT", "SMA0", "SMA1", "SMA2", "NPA"}
    assert spread["CURRENT"] > sum(spread.values()) / 2


def test_generated_rows_pass_model_validation(demo_set):
    for queryset in (
        Customer.objects.order_by("?")[:60],
        CustomerBankAccount.objects.order_by("?")[:60],
        LoanAccount.objects.select_related("customer", "product").order_by("?")[:60],
        CoBorrower.objects.select_related("loan")[:60],
        Branch.objects.all(),
        User.objects.filter(username__in=[s.username for s in demo.STAFF]),
    ):
        for obj in queryset:
            obj.full_clean()


def test_loans_and_co_borrowers_stay_within_the_customers_branch(demo_set):
    assert not LoanAccount.objects.exclude(branch=F("customer__branch")).exists()
    assert not CoBorrower.objects.filter(customer=F("loan__customer")).exists()
    assert not CoBorrower.objects.exclude(customer__branch=F("loan__branch")).exists()


def test_loans_are_disbursed_over_the_last_two_years_after_the_customer_joined(demo_set):
    today = timezone.localdate()
    loans = LoanAccount.objects.select_related("customer")
    assert all(today - timedelta(days=731) <= loan.disbursed_on <= today for loan in loans)
    assert all(
        timezone.localtime(loan.customer.created_at).date() <= loan.disbursed_on for loan in loans
    )
    years = {loan.disbursed_on.year for loan in loans}
    assert len(years) >= 2


def test_numbers_are_unique_well_formed_and_shared_with_the_services(demo_set):
    loan_numbers = list(LoanAccount.objects.values_list("loan_number", flat=True))
    customer_numbers = list(Customer.objects.values_list("customer_number", flat=True))
    assert len(set(loan_numbers)) == LOANS
    assert len(set(customer_numbers)) == CUSTOMERS
    assert all(re.fullmatch(r"LN\d{10}", n) for n in loan_numbers)
    assert all(re.fullmatch(r"C\d{10}", n) for n in customer_numbers)
    assert Customer.objects.values("pan").distinct().count() == CUSTOMERS
    assert Customer.objects.values("mobile").distinct().count() == CUSTOMERS
    # a loan opened by staff afterwards draws the next number and the next id
    customer = Customer.objects.first()
    loan = services.loan_account_create(
        customer=customer,
        product=LoanProduct.objects.get(code="PL"),
        branch=customer.branch,
        sanctioned_amount=Decimal("50000.00"),
        disbursed_amount=Decimal("50000.00"),
        tenure_months=12,
        due_day=5,
        disbursed_on=timezone.localdate(),
        actor=None,
    )
    assert loan.loan_number > max(loan_numbers)
    assert loan.pk > LoanAccount.objects.exclude(pk=loan.pk).order_by("-pk").first().pk


def test_running_again_adds_nothing_and_a_larger_scale_adds_only_the_missing(demo_set):
    loans_before = set(LoanAccount.objects.values_list("pk", "loan_number", "emi_amount"))
    again = _load()
    assert "demo data already present: 300 customers, 400 loans" in again
    assert "added" not in again
    assert set(LoanAccount.objects.values_list("pk", "loan_number", "emi_amount")) == loans_before
    assert User.objects.count() == 40
    assert Region.objects.count() == 3

    _load(loans=450, customers=None)  # customers follow the loans: 5/6 of them
    assert LoanAccount.objects.count() == 450
    assert Customer.objects.count() == 375
    assert loans_before <= set(LoanAccount.objects.values_list("pk", "loan_number", "emi_amount"))
    assert LoanAccount.objects.exclude(branch=F("customer__branch")).count() == 0


def test_a_scale_fraction_sets_both_numbers():
    out = StringIO()
    call_command("demo_data", scale=0.02, seed=1, verbosity=0, stdout=out)
    assert Customer.objects.count() == 100
    assert LoanAccount.objects.count() == 120
    assert LoanAccount.objects.filter(instalments__isnull=True).count() == 0


def test_bootstrap_loads_the_demo_set_once_and_prints_the_logins():
    # the admin login exists already (bootstrap's own first step is not under test here)
    User.objects.bulk_create(
        [User(username="admin", is_staff=True, is_superuser=True, password=make_password("x"))]
    )
    out = StringIO()
    call_command("bootstrap", demo_scale=0.01, stdout=out, stderr=StringIO())
    assert demo.demo_present()
    assert LoanAccount.objects.count() == 60
    assert "Branch Staff: staff.pune1, staff.kolhapur1" in out.getvalue()

    out = StringIO()
    call_command("bootstrap", demo_scale=0.01, stdout=out)
    assert "added" not in out.getvalue()
    assert LoanAccount.objects.count() == 60

    out = StringIO()
    call_command("bootstrap", print_logins=True, stdout=out)
    lines = [line.strip() for line in out.getvalue().splitlines()]
    assert lines[0].startswith("admin / ")
    assert len(lines) == 1 + 7
    for role in demo.ROLE_ORDER:
        assert any(
            line.startswith(f"{role}: ") and line.endswith(demo.DEMO_PASSWORD) for line in lines
        ), role


def test_bootstrap_can_skip_the_demo_set():
    User.objects.bulk_create([User(username="admin", is_staff=True, is_superuser=True)])
    call_command("bootstrap", no_demo_data=True, stdout=StringIO())
    assert not demo.demo_present()
