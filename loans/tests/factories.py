from datetime import date
from decimal import Decimal

import factory

from accounts.tests.factories import BranchFactory
from loans import services
from loans.models import BankingPartner, LoanProduct


class LoanProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoanProduct
        django_get_or_create = ["code"]

    code = "MSME"
    name = "Small business loan"
    interest_rate = Decimal("18.00")
    min_tenure_months = 6
    max_tenure_months = 60
    bounce_charge = Decimal("500.00")


class BankingPartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BankingPartner
        django_get_or_create = ["code"]

    code = "sandbox"
    name = "Sandbox Bank"
    ifsc = "SBOX0000001"
    nach_utility_code = "SBOX00012345"


_counter = iter(range(10**6))


def make_customer(*, branch=None, **overrides):
    n = next(_counter)
    fields = {
        "name": f"Customer {n}",
        "mobile": f"98{n:08d}",
        "pan": f"ABCDE{n % 10000:04d}F",
        "branch": branch or BranchFactory(),
    }
    fields.update(overrides)
    return services.customer_create(actor=None, **fields)


def make_loan(*, customer=None, branch=None, product=None, **overrides):
    customer = customer or make_customer(branch=branch)
    terms = {
        "customer": customer,
        "branch": branch or customer.branch,
        "product": product or LoanProductFactory(),
        "sanctioned_amount": Decimal("100000.00"),
        "disbursed_amount": Decimal("100000.00"),
        "tenure_months": 12,
        "due_day": 5,
        "disbursed_on": date(2026, 1, 2),
    }
    terms.update(overrides)
    return services.loan_account_create(actor=None, **terms)
