import math
from datetime import date

from celery import shared_task
from django.utils import timezone

from . import sandbox, services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def mandates_daily_task(self, run_date: str | None = None) -> dict:
    """Pre-debit notices and presentations for today (once per date), and expiries.

    When another run holds the date (a second beat's task while the first runs, or a
    worker killed mid-run whose task came back before its lease ran out), this task tries
    again once the lease has expired: it then resumes a dead run, or finds the date done."""
    day = date.fromisoformat(run_date) if run_date else timezone.localdate()
    run = services.mandates_present_due(run_date=day)
    if run is None:
        held = services.presentation_run_held_for(run_date=day)
        if held is not None:
            raise self.retry(args=[day.isoformat()], countdown=math.ceil(held) + 1)
    expired = services.mandates_expire(today=day)
    return {"presented": run.counts["presented"] if run else None, "expired": expired}


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=10)
def sandbox_report_task(self, partner_code: str, execution_ids: list[str]) -> None:
    """The sandbox partner's later report of a presented batch."""
    sandbox.sandbox_report(partner_code=partner_code, execution_ids=execution_ids)
