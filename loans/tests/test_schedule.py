from datetime import date
from decimal import Decimal

import pytest

from loans.schedule import build_schedule, due_dates, emi


def test_emi_matches_the_reducing_balance_formula():
    # 1,00,000 at 12% a year over 12 months: the textbook EMI is 8,884.88.
    assert emi(Decimal("100000"), Decimal("12"), 12, "MONTHLY") == Decimal("8884.88")


def test_zero_rate_splits_the_principal_evenly():
    assert emi(Decimal("12000"), Decimal("0"), 12, "MONTHLY") == Decimal("1000.00")


def test_schedule_repays_exactly_the_principal_with_interest_on_the_balance():
    amount, rows = build_schedule(
        principal=Decimal("250000.00"),
        annual_rate_percent=Decimal("18.50"),
        tenure_months=24,
        frequency="MONTHLY",
        disbursed_on=date(2026, 1, 20),
        due_day=5,
    )
    assert len(rows) == 24
    assert sum(r.principal for r in rows) == Decimal("250000.00")
    assert rows[0].interest == (Decimal("250000.00") * Decimal("0.185") / 12).quantize(
        Decimal("0.01")
    )
    assert all(r.total == amount for r in rows[:-1])
    assert abs(rows[-1].total - amount) < Decimal("1.00")
    assert all(isinstance(r.principal, Decimal) for r in rows)


@pytest.mark.parametrize(
    ("disbursed", "due_day", "first_due"),
    [
        (date(2026, 1, 25), 5, date(2026, 3, 5)),  # 5 Feb is under 15 days away
        (date(2026, 1, 2), 5, date(2026, 2, 5)),
        (date(2026, 1, 31), 28, date(2026, 2, 28)),
        (date(2026, 11, 10), 10, date(2026, 12, 10)),
    ],
)
def test_first_monthly_due_date_is_at_least_15_days_after_disbursal(disbursed, due_day, first_due):
    assert due_dates(disbursed, due_day, 3, "MONTHLY")[0] == first_due


def test_monthly_due_dates_cross_the_year():
    dates = due_dates(date(2026, 10, 1), 28, 4, "MONTHLY")
    assert dates == [date(2026, 11, 28), date(2026, 12, 28), date(2027, 1, 28), date(2027, 2, 28)]


def test_weekly_schedule_has_52_instalments_a_year():
    _, rows = build_schedule(
        principal=Decimal("52000"),
        annual_rate_percent=Decimal("24"),
        tenure_months=12,
        frequency="WEEKLY",
        disbursed_on=date(2026, 1, 1),
        due_day=1,
    )
    assert len(rows) == 52
    assert rows[1].due_date == date(2026, 1, 15)
    assert sum(r.principal for r in rows) == Decimal("52000")
