import datetime as dt
from decimal import Decimal

from core.money import in_words, inr
from core.templatetags.formats import day, ist


def test_inr_groups_in_lakhs_and_crores_with_two_places():
    assert inr(Decimal("123456")) == "₹1,23,456.00"
    assert inr(Decimal("12345678.5")) == "₹1,23,45,678.50"
    assert inr(Decimal("-999.999")) == "-₹1,000.00"
    assert inr(None) == "—"


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
