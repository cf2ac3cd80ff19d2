"""The execution schedule: presentations of the unpaid instalments, off bank holidays."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from loans.models import Instalment

from ..models import BankHoliday, Mandate, ScheduledPresentation

P = ScheduledPresentation.Status


def next_working_day(day: date, holidays: set[date] | None = None) -> date:
    """The day itself, or the next day that is neither a Sunday nor a bank holiday."""
    if holidays is None:
        holidays = set(BankHoliday.objects.filter(date__gte=day).values_list("date", flat=True))
    while day.weekday() == 6 or day in holidays:
        day += timedelta(days=1)
    return day


def mandate_schedule_generate(*, mandate: Mandate, today: date | None = None) -> int:
    """Schedule the unpaid instalments due within the mandate's dates, from today on."""
    today = today or timezone.localdate()
    holidays = set(BankHoliday.objects.filter(date__gte=today).values_list("date", flat=True))
    instalments = Instalment.objects.filter(
        loan=mandate.loan_id,
        due_date__gte=max(today, mandate.start_date),
        due_date__lte=mandate.end_date,
    ).exclude(status=Instalment.Status.PAID)
    rows = [
        ScheduledPresentation(
            mandate=mandate,
            instalment=inst,
            due_date=inst.due_date,
            presentation_date=next_working_day(inst.due_date, holidays),
            amount=min(inst.total_due - inst.total_paid, mandate.max_amount),
        )
        for inst in instalments
    ]
    created = ScheduledPresentation.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


def presentations_reschedule(*, today: date | None = None) -> int:
    """Move scheduled presentations off bank holidays (after the calendar changed)."""
    today = today or timezone.localdate()
    holidays = set(BankHoliday.objects.filter(date__gte=today).values_list("date", flat=True))
    moved = 0
    for row in ScheduledPresentation.objects.filter(
        status__in=[P.SCHEDULED, P.RETRY_SCHEDULED], presentation_date__gte=today
    ):
        day = next_working_day(
            row.due_date if row.attempts == 0 else row.presentation_date, holidays
        )
        if day != row.presentation_date:
            ScheduledPresentation.objects.filter(pk=row.pk).update(
                presentation_date=day, pre_debit_notified_at=None
            )
            moved += 1
    return moved


@transaction.atomic
def bank_holiday_save(*, holiday_id: int | None, actor, **fields) -> tuple[BankHoliday, int]:
    """Add a bank holiday (``holiday_id`` None) or change one, then move the scheduled
    presentations off the calendar's holidays. Returns the holiday and how many presentations
    moved. Audited by the change tracking."""
    holiday = (
        BankHoliday()
        if holiday_id is None
        else BankHoliday.objects.select_for_update().get(pk=holiday_id)
    )
    for name, value in fields.items():
        setattr(holiday, name, value)
    holiday.full_clean()
    holiday.save()
    return holiday, presentations_reschedule()


@transaction.atomic
def bank_holidays_delete(*, holiday_ids: Iterable[int], actor) -> int:
    """Remove bank holidays (one by one, so that each is audited), then move the scheduled
    presentations back to the days now free. Returns how many moved."""
    for holiday in BankHoliday.objects.select_for_update().filter(pk__in=list(holiday_ids)):
        holiday.delete()
    return presentations_reschedule()
