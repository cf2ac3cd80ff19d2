import datetime

from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def reconciliation_tick_task() -> dict:
    """Every 15 minutes: the intraday roll-up, the guarded daily build of closed dates,
    late arrivals. A second beat or a redelivery finds the daily jobs claimed."""
    return services.reconciliation_tick()


@shared_task(acks_late=True, ignore_result=True)
def dcr_build_range_task(date_from: str, date_to: str, branch_ids: list[int] | None = None) -> dict:
    """An on-demand build too large to run in a request (idempotent: re-running gives the
    same figures and never rewrites a submitted DCR)."""
    report = services.dcr_build_range(
        date_from=datetime.date.fromisoformat(date_from),
        date_to=datetime.date.fromisoformat(date_to),
        branch_ids=branch_ids,
    )
    return {"written": report.written, "frozen": report.frozen, "failed": len(report.failed)}
