"""Amounts, ids, dates and counts are parsed from ASCII digits only, and the amount's
documented pattern is exactly what the server accepts."""

import re
from decimal import Decimal

import pytest
from django.test import RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from api.fields import AMOUNT_SHAPE, AmountField, amount_pattern, max_amount, parse_count
from core.errors import ApplicationError
from mandates.api.serializers import PartnerResultSerializer
from payments.api.serializers import PaymentInSerializer, TransactionFilterSerializer

ARABIC_1500 = "\u0661\u0665\u0660\u0660"
FULL_WIDTH_1500 = "\uff11\uff15\uff10\uff10"
ARABIC_DATE = "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0662"  # 2026-01-02


def _errors(**overrides):
    body = {"loan_account": "LN0000000042", "amount": "1500.00", "mode": "CASH", **overrides}
    serializer = PaymentInSerializer(data=body)
    serializer.is_valid()
    return serializer.errors


def test_a_valid_payment_is_accepted():
    assert _errors(business_date="2026-01-02") == {}


@pytest.mark.parametrize(
    "amount", [ARABIC_1500, FULL_WIDTH_1500, f"{ARABIC_1500}.00", "1\u0665\u0660\u0660"]
)
def test_amounts_with_digits_that_are_not_ascii_are_refused(amount):
    assert set(_errors(amount=amount)) == {"amount"}


@pytest.mark.parametrize(
    "loan_number", [f"LN000000{ARABIC_1500}", f"LN000000{FULL_WIDTH_1500}", "LN000000\u0967500"]
)
def test_loan_numbers_with_digits_that_are_not_ascii_are_refused(loan_number):
    assert set(_errors(loan_account=loan_number)) == {"loan_account"}


def test_dates_with_digits_that_are_not_ascii_are_refused():
    assert set(_errors(business_date=ARABIC_DATE)) == {"business_date"}
    filters = TransactionFilterSerializer(data={"branch": "B1", "business_date": ARABIC_DATE})
    assert not filters.is_valid()
    assert set(filters.errors) == {"business_date"}


@pytest.mark.parametrize(
    "field", ["loan_account", "receipt_number", "collector", "external_reference"]
)
@pytest.mark.parametrize("value", [900, 900.0, True])
def test_a_text_field_given_a_json_number_or_boolean_is_refused(field, value):
    # the schema says ``type: string``: "900.0" must not be made up from 900.0
    assert set(_errors(**{field: value})) == {field}


def test_a_partner_result_with_a_number_for_its_text_is_refused():
    result = {"execution_id": "E-1", "status": "BOUNCED", "return_code": "R01", "reason": "x"}
    for field in ("execution_id", "return_code", "reason"):
        serializer = PartnerResultSerializer(data={**result, field: 1})
        assert not serializer.is_valid()
        assert set(serializer.errors) == {field}
    assert PartnerResultSerializer(data=result).is_valid()


def _query(**params) -> Request:
    return Request(RequestFactory().get("/", params))


@pytest.mark.parametrize(
    "value", ["\u0661\u0660", "\uff11\uff10", "null", "0", "-1", "1.5", "", " 5"]
)
def test_a_count_that_is_not_a_whole_number_in_ascii_digits_is_refused(value):
    with pytest.raises(ApplicationError) as raised:
        parse_count(_query(page_size=value), "page_size", maximum=200)
    assert (raised.value.code, raised.value.field) == ("invalid", "page_size")


def test_a_count_given_twice_is_refused():
    with pytest.raises(ApplicationError):
        parse_count(Request(RequestFactory().get("/?page_size=5&page_size=5")), "page_size")


def test_a_count_is_capped_and_absent_is_none():
    assert parse_count(_query(page_size="0010"), "page_size", maximum=200) == 10
    assert parse_count(_query(page_size="9" * 5000), "page_size", maximum=200) == 200
    assert parse_count(_query(), "page_size", maximum=200) is None


def _accepted(text: str) -> bool:
    try:
        AmountField().run_validation(text)
    except ValidationError:
        return False
    return True


AMOUNT_TEXT = st.text(alphabet="0123456789.", max_size=16) | st.sampled_from(
    ["0", "0.00", "00.01", "1000000.00", "1000000.01", "999999.99", "000000000001", ".5"]
)


@settings(max_examples=400, derandomize=True, database=None)
@given(AMOUNT_TEXT)
def test_the_documented_amount_pattern_is_exactly_what_is_accepted(text):
    pattern = re.compile(amount_pattern(max_amount()))
    assert bool(pattern.fullmatch(text)) == _accepted(text)


@pytest.mark.parametrize("limit", ["1000000.00", "1234.56", "50.10", "999999999999.99", "1"])
@settings(max_examples=200, derandomize=True, database=None)
@given(text=AMOUNT_TEXT)
def test_the_amount_pattern_follows_any_limit(limit, text):
    limit = Decimal(limit)
    expected = bool(AMOUNT_SHAPE.fullmatch(text)) and 0 < Decimal(text) <= limit
    assert bool(re.fullmatch(amount_pattern(limit), text)) == expected


def test_zero_does_not_match_the_documented_amount_pattern():
    pattern = re.compile(amount_pattern(max_amount()))
    assert not pattern.fullmatch("0")
    assert not pattern.fullmatch("0.00")
    assert pattern.fullmatch("0.01") and pattern.fullmatch("1000000.00")
    assert not pattern.fullmatch("1000000.01")
