"""The guarded daily DCR build (one ``JobRun`` per job and date) and the 15-minute tick."""

from __future__ import annotations

import datetime
import os
import secrets
import socket
from collections import defaultdict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Branch
from payments.services import business_date_for

from ..exceptions import JobClaimLost
from ..models import FROZEN, Dcr, JobRun
from .build import dcr_build_many

# a RUNNING job silent this long is taken over
JOB_LEASE = datetime.timedelta(seconds=settings.RECONCILIATION_JOB_LEASE_SECONDS)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def job_claim(
    *, job: str, business_date: datetime.date, owner: str, branches_total: int = 0
) -> JobRun | None:
    """Claim the (job, business date) row, or return None when it is done or another run
    holds it. A FAILED run, or a RUNNING one silent for ``JOB_LEASE``, is taken over."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return JobRun.objects.create(
                job=job,
                business_date=business_date,
                owner=owner,
                branches_total=branches_total,
                started_at=now,
                heartbeat_at=now,
            )
    except IntegrityError:
        pass
    taken = (
        JobRun.objects.filter(job=job, business_date=business_date)
        .filter(
            Q(state=JobRun.State.FAILED)
            | Q(state=JobRun.State.RUNNING, heartbeat_at__lt=now - JOB_LEASE)
        )
        .update(
            state=JobRun.State.RUNNING,
            owner=owner,
            attempts=F("attempts") + 1,
            branches_total=branches_total,
            branches_done=0,
            started_at=now,
            heartbeat_at=now,
            finished_at=None,
            error="",
        )
    )
    return JobRun.objects.get(job=job, business_date=business_date) if taken else None


def dcr_daily_run(
    *, job: str, business_date: datetime.date, branch_ids: list[int], owner: str | None = None
) -> str:
    """The guarded daily build of a closed business date: ``"done"``, ``"failed"`` (some
    branches could not be written; the next tick resumes) or ``"skipped"`` (done already,
    or another run is at it)."""
    owner = owner or _owner()
    run = job_claim(
        job=job, business_date=business_date, owner=owner, branches_total=len(branch_ids)
    )
    if run is None:
        return "skipped"

    def heartbeat(branch_id: int, day: datetime.date) -> None:
        beat = JobRun.objects.filter(pk=run.pk, owner=owner).update(
            heartbeat_at=timezone.now(), branches_done=F("branches_done") + 1
        )
        if not beat:
            raise JobClaimLost(f"{job} {business_date}: taken over by another run")

    try:
        report = dcr_build_many(
            pairs=[(branch_id, business_date) for branch_id in branch_ids], on_done=heartbeat
        )
    except BaseException as exc:
        _job_finish(run, owner, failed=True, error=f"{type(exc).__name__}: {exc}")
        raise
    if report.failed:
        error = "; ".join(
            f"branch {b}: {str(e).splitlines()[0]}" for (b, _), e in report.failed.items()
        )
        _job_finish(run, owner, failed=True, error=error)
        return "failed"
    _job_finish(run, owner, failed=False)
    return "done"


def _job_finish(run: JobRun, owner: str, *, failed: bool, error: str = "") -> None:
    JobRun.objects.filter(pk=run.pk, owner=owner).update(
        state=JobRun.State.FAILED if failed else JobRun.State.DONE,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        error=error[:5000],
    )


def reconciliation_tick(*, now: datetime.datetime | None = None) -> dict[str, object]:
    """What beat runs every 15 minutes:

    1. the intraday roll-up: a provisional DCR of each branch's open business date;
    2. the daily build of each branch's latest closed business date, once per cut-off
       time and date (guarded by ``JobRun``; a failed run resumes on the next tick);
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
