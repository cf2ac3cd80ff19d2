"""The one run-once guard of the daily jobs (the mandate presentation, the DCR build), and
the one worker id.

A run is a ``core.models.JobRun`` row unique per (job name, run key, e.g. the business
date). A worker claims it with a lease; every other claim skips it while the lease is
alive. The owner renews the lease with each checkpoint (``job_heartbeat``) and records
the end (``job_finish``). A run whose worker died (lease expired) or that failed is taken
over by the next claim, which resumes from the checkpoint (``run.progress``) and keeps the
figures (``run.counts``); a done run is run again only when forced. Every write is a
conditional UPDATE on the owner, so two workers can never both own a run: the loser of a
race finds the row already taken, and a worker that lost its run (it was silent past the
lease) gets ``JobLost`` at its next checkpoint instead of writing over the new owner.

    with job_run("dcr_daily@1800", business_date, lease=JOB_LEASE) as run:
        if run is None:
            return "skipped"  # done already, or another worker holds it
        for step in steps_after(run.progress):
            ...
            job_heartbeat(run, progress={...}, counts={...})
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import JobRun

logger = logging.getLogger(__name__)

RunKey = str | datetime.date
ERROR_LENGTH = 5000


class JobLost(Exception):
    """The run was taken over by another worker (this one was silent past its lease)."""


def worker_id() -> str:
    """Who holds a lease (a job run, a posting queue item): host, process and a random
    part, so that two workers of one process (threads) differ too."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _key(key: RunKey) -> str:
    return key.isoformat() if isinstance(key, datetime.date) else str(key)


def job_claim(
    *,
    name: str,
    key: RunKey,
    lease: datetime.timedelta,
    force: bool = False,
    owner: str | None = None,
) -> JobRun | None:
    """Claim the run (``name``, ``key``), or return None when it is done (and not
    ``force``) or another worker holds its lease. A failed run, or a running one past its
    lease, is taken over with its checkpoint; a forced done run starts over."""
    key, owner, now = _key(key), owner or worker_id(), timezone.now()
    held = {
        "state": JobRun.State.RUNNING,
        "owner": owner,
        "started_at": now,
        "heartbeat_at": now,
        "lease_until": now + lease,
        "finished_at": None,
        "error": "",
    }
    try:
        with transaction.atomic():
            return JobRun.objects.create(name=name, key=key, attempts=1, **held)
    except IntegrityError:
        pass
    runs = JobRun.objects.filter(name=name, key=key)
    stale = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    taken = runs.filter(Q(state=JobRun.State.FAILED) | Q(stale, state=JobRun.State.RUNNING)).update(
        attempts=F("attempts") + 1, **held
    )
    if not taken and force:
        taken = runs.filter(state=JobRun.State.DONE).update(
            attempts=F("attempts") + 1, progress={}, counts={}, **held
        )
    return runs.get() if taken else None


def job_heartbeat(run: JobRun, *, progress: dict | None = None, counts: dict | None = None) -> None:
    """Renew the lease, and record the checkpoint (``progress`` replaces it) and figures
    (``counts`` are merged). Raises ``JobLost`` when another worker owns the run now.
    Inside the caller's transaction, the checkpoint commits with the work it records."""
    if run.state != JobRun.State.RUNNING or run.lease_until is None:
        raise JobLost(f"{run.name} {run.key}: finished already")
    now = timezone.now()
    changes = {"heartbeat_at": now, "lease_until": now + _lease_of(run)}
    if progress is not None:
        changes["progress"] = progress
    if counts:
        changes["counts"] = {**run.counts, **counts}
    if not _owned(run).update(**changes):
        raise JobLost(f"{run.name} {run.key}: taken over by another worker")
    for field, value in changes.items():
        setattr(run, field, value)


def job_finish(run: JobRun, *, error: str = "", counts: dict | None = None) -> bool:
    """Record the end of the run: DONE, or FAILED with ``error`` (taken over by the next
    claim). False when the run is not this worker's any more, or finished already."""
    now = timezone.now()
    changes = {
        "state": JobRun.State.FAILED if error else JobRun.State.DONE,
        "finished_at": now,
        "heartbeat_at": now,
        "lease_until": None,
        "error": error[:ERROR_LENGTH],
    }
    if counts:
        changes["counts"] = {**run.counts, **counts}
    if not _owned(run).update(**changes):
        return False
    for field, value in changes.items():
        setattr(run, field, value)
    return True


@contextmanager
def job_run(
    name: str, key: RunKey, *, lease: datetime.timedelta, force: bool = False
) -> Iterator[JobRun | None]:
    """Claim the run for the block (None when it is not this worker's to run), then
    finish it: DONE when the block ends (unless it finished the run itself), FAILED with
    the exception when it raises."""
    run = job_claim(name=name, key=key, lease=lease, force=force)
    if run is None:
        yield None
        return
    try:
        yield run
    except BaseException as exc:
        try:
            job_finish(run, error=f"{type(exc).__name__}: {exc}")
        except DatabaseError:
            # the database that failed the job: the lease runs out and the run is taken over
            logger.warning("job %s %s: failure not recorded", name, run.key, exc_info=True)
        raise
    job_finish(run)


def job_held_for(*, name: str, key: RunKey) -> float | None:
    """Seconds until the lease of the run expires when a worker holds it; None when it is
    done or failed, nobody holds it, or it does not exist."""
    run = JobRun.objects.filter(name=name, key=_key(key), state=JobRun.State.RUNNING).first()
    if run is None or run.lease_until is None:
        return None
    left = (run.lease_until - timezone.now()).total_seconds()
    return left if left > 0 else None


def _owned(run: JobRun):
    return JobRun.objects.filter(pk=run.pk, owner=run.owner, state=JobRun.State.RUNNING)


def _lease_of(run: JobRun) -> datetime.timedelta:
    """The lease the run was claimed with (claim and heartbeats set both times at once)."""
    return run.lease_until - run.heartbeat_at
