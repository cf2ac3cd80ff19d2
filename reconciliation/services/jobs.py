"""The guarded daily DCR build (the run-once guard of ``core.jobs``, one run per job and
date) and the 15-minute tick."""

from __future__ import annotations

import datetime
from collections import defaultdict

from django.conf import settings
from django.utils import timezone

from accounts.models import Branch
from core.jobs import job_finish, job_heartbeat, job_run
from payments.services import business_date_for

from ..models import FROZEN, Dcr
from .build import dcr_build_many

# a RUNNING job silent this long is taken over
JOB_LEASE = datetime.timedelta(seconds=settings.RECONCILIATION_JOB_LEASE_SECONDS)


def dcr_daily_run(*, job: str, business_date: datetime.date, branch_ids: list[int]) -> str:
    """The guarded daily build of a closed business date: ``"done"``, ``"failed"`` (some
    branches could not be written; the next tick resumes) or ``"skipped"`` (done already,
    or another run is at it). The checkpoint is the branches written: a run taken over
    (failed, or its worker died) builds only the others."""
    with job_run(job, business_date, lease=JOB_LEASE) as run:
        if run is None:
            return "skipped"
        done = [b for b in run.progress.get("branches", []) if b in branch_ids]
        job_heartbeat(run, counts={"branches_total": len(branch_ids), "branches_done": len(done)})

        def checkpoint(branch_id: int, day: datetime.date) -> None:
            done.append(branch_id)
            job_heartbeat(run, progress={"branches": done}, counts={"branches_done": len(done)})

        report = dcr_build_many(
            pairs=[(b, business_date) for b in branch_ids if b not in done], on_done=checkpoint
        )
        if report.failed:
            error = "; ".join(
                f"branch {b}: {str(e).splitlines()[0]}" for (b, _), e in report.failed.items()
            )
            job_finish(run, error=error)
            return "failed"
    return "done"


def reconciliation_tick(*, now: datetime.datetime | None = None) -> dict[str, object]:
    """What beat runs every 15 minutes:

    1. the intraday roll-up: a provisional DCR of each branch's open business date;
    2. the daily build of each branch's latest closed business date, once per cut-off
       time and date (guarded by ``core.jobs``; a failed run resumes on the next tick);
    3. late arrivals: submitted and approved DCRs of the back-dating window are read
       again, and what they do not count is recorded for the approver.
    """
    now = now or timezone.now()
    branches = list(Branch.objects.filter(is_active=True).only("pk", "code", "cutoff_time"))
    summary: dict[str, object] = {}
    intraday = dcr_build_many(
        pairs=[(b.pk, business_date_for(b, now)) for b in branches], with_dbs=False
    )
    summary["intraday"] = intraday.written

    groups: dict[datetime.time, list[Branch]] = defaultdict(list)
    for branch in branches:
        groups[branch.cutoff_time].append(branch)
    daily = {}
    for cutoff, members in sorted(groups.items()):
        closed = business_date_for(members[0], now) - datetime.timedelta(days=1)
        job = f"dcr_daily@{cutoff:%H%M}"
        daily[f"{job} {closed}"] = dcr_daily_run(
            job=job, business_date=closed, branch_ids=[b.pk for b in members]
        )
    summary["daily"] = daily

    window = timezone.localdate(now) - datetime.timedelta(days=settings.PAYMENTS_BACKDATE_DAYS + 1)
    frozen = Dcr.objects.filter(
        status__in=FROZEN, business_date__gte=window, branch__is_active=True
    ).values_list("branch_id", "business_date")
    summary["late_arrivals"] = dcr_build_many(pairs=list(frozen)).late_arrivals
    return summary
