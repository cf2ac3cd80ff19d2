import datetime as dt
import random
from decimal import Decimal, InvalidOperation

import pytest
from babel.numbers import format_currency

from core.money import in_words, inr
from core.templatetags.formats import day, ist


def test_inr_groups_in_lakhs_and_crores_with_two_places():
    assert inr(Decimal("123456")) == "₹1,23,456.00"
    assert inr(Decimal("12345678.5")) == "₹1,23,45,678.50"
    assert inr(Decimal("-999.999")) == "-₹1,000.00"
    assert inr(None) == "—"


def babel_inr(amount) -> str:
    """What ``inr`` gave when it called babel: the reference its own formatter must match."""
    return format_currency(Decimal(str(amount)).quantize(Decimal("0.01")), "INR", locale="en_IN")


EDGE_AMOUNTS = [
    0,
    "0",
    "0.00",
    Decimal("0E-10"),
    Decimal("-0"),
    Decimal("-0.00"),
    Decimal("-0.001"),
    "0.004",
    "0.005",
    "0.015",
    "0.995",
    "-0.995",
    1,
    -1,
    "9.99",
    "99.5",
    "999.99",
    "999.995",
    "1000",
    "-1000",
    "9999.99",
    "10000",
    "99999.99",
    "100000",
    "-100000.01",
    "123456",
    "1234567.891",
    "-1234567.891",
    "10000000",
    "12345678.5",
    "123456789.12",
    Decimal("1E+3"),
    Decimal("1E+20"),
    Decimal("99999999999999.99"),
    Decimal("-99999999999999.99"),
    1.5,
    -2.25,
    "  12 ",
    12345,
    "NaN",
]


@pytest.mark.parametrize("amount", EDGE_AMOUNTS, ids=repr)
def test_inr_matches_babel_on_edge_amounts(amount):
    assert inr(amount) == babel_inr(amount)


def test_inr_matches_babel_on_many_random_amounts_with_paise_and_signs():
    rng = random.Random(20261207)
    amounts = []
    for _ in range(20_000):
        digits = rng.randint(0, 15)
        paise = Decimal(rng.randint(-(10**digits), 10**digits)) / (10 ** rng.randint(0, 4))
        amounts.append(paise)
    differing = [(a, inr(a), babel_inr(a)) for a in amounts if inr(a) != babel_inr(a)]
    assert differing == []
    assert any(a < 0 for a in amounts) and any(a != a.to_integral_value() for a in amounts)


def test_inr_refuses_what_babel_refused():
    for amount in ("abc", Decimal("Infinity"), Decimal("1E+40")):
        with pytest.raises(InvalidOperation):
            babel_inr(amount)
        with pytest.raises(InvalidOperation):
            inr(amount)


def test_inr_shows_nothing_as_a_dash():
    assert inr(None) == "—"
    assert inr("") == "—"


def test_amount_in_words_uses_indian_numbering_and_paise():
    assert in_words(Decimal("123456")) == (
        "Rupees One lakh twenty-three thousand four hundred and fifty-six only"
    )
    assert in_words(Decimal("10000000.50")) == "Rupees One crore and fifty paise only"


def test_moments_show_in_ist_with_the_zone_named():
    moment = dt.datetime(2026, 12, 7, 8, 35, tzinfo=dt.UTC)
    assert ist(moment) == "07 Dec 2026, 14:05 IST"
    assert ist("2026-12-07T08:35:00.000000Z") == "07 Dec 2026, 14:05 IST"
    assert day(dt.date(2026, 1, 5)) == "05 Jan 2026"
