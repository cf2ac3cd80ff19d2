import math
from datetime import date

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def loans_dues_nightly_task(self, as_of: str | None = None) -> dict:
    """Every active loan's dues as of today (IST), once per date. When another run holds
    the date (a worker killed mid-run whose task came back before its lease ran out), try
    again once the lease has expired: the run is then resumed, or found done."""
    day = date.fromisoformat(as_of) if as_of else timezone.localdate()
    run = services.loans_dues_daily(as_of=day)
    if run is None:
        held = services.loans_dues_held_for(as_of=day)
        if held is not None:
            raise self.retry(args=[day.isoformat()], countdown=math.ceil(held) + 1)
        return {"as_of": day.isoformat(), "loans": None}
    return {"as_of": day.isoformat(), "loans": run.counts.get("loans", 0)}
