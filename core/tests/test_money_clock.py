"""core.money and core.clock: the one money column, the one paise conversion, the one
DynamoDB timestamp format (and the older one still read)."""

import datetime as dt
from decimal import Decimal

from django.db import models

from core.clock import business_date, iso, parse_iso
from core.money import PAISA, MoneyField, from_paise, to_paise


def test_paise_round_trip_without_float():
    assert to_paise(Decimal("1500.25")) == 150025
    assert from_paise(150025) == Decimal("1500.25")
    assert from_paise(7) == Decimal("0.07")
    assert str(from_paise(100)) == "1.00"
    assert Decimal("2.345").quantize(PAISA) == Decimal("2.34")


def test_money_field_is_a_plain_decimal_column_to_migrations():
    field = MoneyField(default=Decimal("0.00"))
    field.set_attributes_from_name("amount")
    name, path, args, kwargs = field.deconstruct()
    assert path == "django.db.models.DecimalField"
    assert kwargs["max_digits"] == 14 and kwargs["decimal_places"] == 2
    assert isinstance(field, models.DecimalField)


def test_iso_is_utc_fixed_width_with_z():
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    moment = dt.datetime(2026, 1, 5, 15, 0, tzinfo=ist)
    assert iso(moment) == "2026-01-05T09:30:00.000000Z"


def test_parse_iso_reads_both_formats_ever_written():
    expected = dt.datetime(2026, 1, 5, 9, 30, 0, 123456, tzinfo=dt.UTC)
    assert parse_iso("2026-01-05T09:30:00.123456Z") == expected
    assert parse_iso("2026-01-05T09:30:00.123456+00:00") == expected


def test_an_old_plus_zero_value_sorts_in_time_order_against_new_ones():
    earlier_old = "2026-01-05T09:30:00.123456+00:00"
    later_new = iso(dt.datetime(2026, 1, 5, 9, 30, 0, 123457, tzinfo=dt.UTC))
    earlier_new = iso(dt.datetime(2026, 1, 5, 9, 30, 0, 123455, tzinfo=dt.UTC))
    assert earlier_new < earlier_old < later_new


def test_business_date_moves_to_the_next_day_at_the_cutoff(settings):
    cutoff = dt.time(18, 0)
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    assert business_date(dt.datetime(2026, 1, 5, 17, 59, tzinfo=ist), cutoff) == dt.date(2026, 1, 5)
    assert business_date(dt.datetime(2026, 1, 5, 18, 0, tzinfo=ist), cutoff) == dt.date(2026, 1, 6)
