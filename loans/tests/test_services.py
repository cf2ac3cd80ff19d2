from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from loans.models import Instalment, LoanAccount
from tests.factories import BranchFactory, LoanProductFactory, make_customer, make_loan

pytestmark = pytest.mark.django_db


def test_opening_a_loan_generates_its_schedule_and_outstanding():
    loan = make_loan(disbursed_amount=Decimal("100000.00"), tenure_months=12)
    instalments = list(loan.instalments.order_by("number"))
    assert len(instalments) == 12
    assert loan.emi_amount == Decimal("9168.00")  # 1,00,000 at 18% over 12 months
    assert loan.outstanding_principal == Decimal("100000.00")
    assert loan.outstanding_interest == sum(i.interest_due for i in instalments)
    assert loan.outstanding_charges == Decimal("0.00")
    assert instalments[0].due_date == date(2026, 2, 5)
    assert loan.loan_number.startswith("LN") and len(loan.loan_number) == 12
    assert loan.interest_rate == Decimal("18.00")  # from the product


def test_loan_numbers_are_unique_and_sequential():
    first, second = make_loan(), make_loan()
    assert int(second.loan_number[2:]) == int(first.loan_number[2:]) + 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tenure_months": 3}, "tenure_months"),
        ({"tenure_months": 61}, "tenure_months"),
        ({"due_day": 29}, "due_day"),
        ({"due_day": 0}, "due_day"),
        ({"disbursed_amount": Decimal("200000.00")}, "disbursed_amount"),
        ({"sanctioned_amount": Decimal("-5.00")}, "sanctioned_amount"),
    ],
)
def test_bad_loan_terms_are_refused_on_their_field_and_nothing_is_saved(overrides, field):
    customer = make_customer()
    with pytest.raises(ValidationError) as caught:
        make_loan(customer=customer, **overrides)
    assert field in caught.value.message_dict
    assert LoanAccount.objects.count() == 0
    assert Instalment.objects.count() == 0


def test_a_loan_must_be_booked_at_the_customers_branch():
    customer = make_customer()
    with pytest.raises(ValidationError) as caught:
        make_loan(customer=customer, branch=BranchFactory())
    assert "customer" in caught.value.message_dict


@pytest.mark.parametrize(
    ("field", "value"),
    [("pan", "ABCD1234F"), ("pan", "abcde1234f"), ("mobile", "12345"), ("mobile", "5876543210")],
)
def test_bad_customer_identifiers_are_refused(field, value):
    with pytest.raises(ValidationError) as caught:
        make_customer(**{field: value})
    assert field in caught.value.message_dict


def test_product_tenure_range_must_be_ordered():
    product = LoanProductFactory.build(code="X", min_tenure_months=24, max_tenure_months=12)
    with pytest.raises(ValidationError) as caught:
        product.full_clean()
    assert "max_tenure_months" in caught.value.message_dict
