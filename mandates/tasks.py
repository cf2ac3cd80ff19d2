from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(acks_late=True, ignore_result=True)
def mandates_daily_task() -> dict:
    """Pre-debit notices and presentations for today (once per date), and expiries."""
    today = timezone.localdate()
    run = services.mandates_present_due(run_date=today)
    expired = services.mandates_expire(today=today)
    return {"presented": run.presented if run else None, "expired": expired}


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=10)
def sandbox_report_task(self, partner_code: str, execution_ids: list[str]) -> None:
    """The sandbox partner's later report of a presented batch."""
    services.sandbox_report(partner_code=partner_code, execution_ids=execution_ids)


@shared_task(acks_late=True, ignore_result=True)
def execution_results_sync_task() -> int:
    return services.execution_results_sync_pending()
