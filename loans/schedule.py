"""Reducing-balance EMI and the repayment schedule, in Decimal (never float).

EMI = P * r * (1 + r)^n / ((1 + r)^n - 1), with r the rate per period; each
instalment's interest is the balance times r, its principal the EMI less that interest,
every figure rounded to the paisa (half up); the last instalment takes whatever
principal is left, so the schedule's principal adds up to exactly the amount lent.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from core.money import PAISA

PERIODS_PER_YEAR = {"MONTHLY": 12, "FORTNIGHTLY": 26, "WEEKLY": 52}


@dataclass(frozen=True)
class ScheduledInstalment:
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest


def instalment_count(tenure_months: int, frequency: str) -> int:
    if frequency == "MONTHLY":
        return tenure_months
    return max(1, round(tenure_months * PERIODS_PER_YEAR[frequency] / 12))


def emi(principal: Decimal, annual_rate_percent: Decimal, periods: int, frequency: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 34
        rate = annual_rate_percent / Decimal(100) / PERIODS_PER_YEAR[frequency]
        if rate == 0:
            return (principal / periods).quantize(PAISA, ROUND_HALF_UP)
        growth = (1 + rate) ** periods
        return (principal * rate * growth / (growth - 1)).quantize(PAISA, ROUND_HALF_UP)


def _add_months(start: date, months: int, day: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def due_dates(disbursed_on: date, due_day: int, periods: int, frequency: str) -> list[date]:
    """Monthly: the due day of each month, the first at least 15 days after disbursal."""
    if frequency == "MONTHLY":
        first_offset = 1 if (_add_months(disbursed_on, 1, due_day) - disbursed_on).days >= 15 else 2
        return [_add_months(disbursed_on, first_offset + i, due_day) for i in range(periods)]
    step = timedelta(days=7 if frequency == "WEEKLY" else 14)
    return [disbursed_on + step * (i + 1) for i in range(periods)]


def build_schedule(
    *,
    principal: Decimal,
    annual_rate_percent: Decimal,
    tenure_months: int,
    frequency: str,
    disbursed_on: date,
    due_day: int,
) -> tuple[Decimal, list[ScheduledInstalment]]:
    periods = instalment_count(tenure_months, frequency)
    amount = emi(principal, annual_rate_percent, periods, frequency)
    rate = annual_rate_percent / Decimal(100) / PERIODS_PER_YEAR[frequency]
    balance = principal
    rows = []
    for number, due in enumerate(due_dates(disbursed_on, due_day, periods, frequency), start=1):
        interest = (balance * rate).quantize(PAISA, ROUND_HALF_UP)
        part = balance if number == periods else min(balance, amount - interest)
        rows.append(ScheduledInstalment(number, due, part, interest))
        balance -= part
    return amount, rows
