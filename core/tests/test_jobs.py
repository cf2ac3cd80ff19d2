"""core.jobs: the one run-once guard (claim with a lease, checkpoint, take-over, finish),
under real concurrency, and the data migration that brought the two old guards into it."""

import datetime
from functools import partial

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from core.jobs import (
    JobLost,
    job_claim,
    job_finish,
    job_heartbeat,
    job_held_for,
    job_run,
    worker_id,
)
from core.models import JobRun
from tests.concurrency import in_threads

DAY = datetime.date(2026, 12, 4)
LEASE = datetime.timedelta(minutes=30)


def _claim(owner: str, *, force: bool = False, key=DAY) -> JobRun | None:
    return job_claim(name="nightly", key=key, lease=LEASE, owner=owner, force=force)


def _lapse() -> None:
    """As if the holder died: its lease ran out."""
    JobRun.objects.update(lease_until=timezone.now() - datetime.timedelta(seconds=1))


@pytest.mark.django_db
def test_a_second_worker_skips_a_run_whose_lease_is_alive():
    run = _claim("first")
    assert (run.state, run.owner, run.attempts, run.key) == ("RUNNING", "first", 1, "2026-12-04")
    assert run.lease_until == run.started_at + LEASE
    assert _claim("second") is None
    assert _claim("second", force=True) is None  # forcing never takes a live run
    job_heartbeat(run, progress={"step": 1})
    assert _claim("second") is None
    assert JobRun.objects.get().owner == "first"


@pytest.mark.django_db
def test_a_run_past_its_lease_is_taken_over_and_resumes_from_its_checkpoint():
    dead = _claim("dead")
    job_heartbeat(dead, progress={"branches": [1, 2]}, counts={"branches_done": 2})
    _lapse()

    run = _claim("second")

    assert (run.owner, run.attempts, run.state) == ("second", 2, "RUNNING")
    assert run.progress == {"branches": [1, 2]} and run.counts == {"branches_done": 2}
    assert run.lease_until > timezone.now()
    # the dead worker, had it only been slow, may write nothing over the new owner
    with pytest.raises(JobLost):
        job_heartbeat(dead, progress={"branches": [1, 2, 3]})
    assert not job_finish(dead)
    job_heartbeat(run, progress={"branches": [1, 2, 3]}, counts={"branches_done": 3})
    assert job_finish(run, counts={"total": 3})
    stored = JobRun.objects.get()
    assert (stored.state, stored.owner, stored.attempts) == ("DONE", "second", 2)
    assert stored.progress == {"branches": [1, 2, 3]}
    assert stored.counts == {"branches_done": 3, "total": 3}
    assert stored.finished_at is not None and stored.lease_until is None


@pytest.mark.django_db
def test_a_heartbeat_renews_the_lease():
    run = _claim("first")
    JobRun.objects.update(lease_until=timezone.now() + datetime.timedelta(seconds=5))
    job_heartbeat(run)
    assert JobRun.objects.get().lease_until > timezone.now() + LEASE - datetime.timedelta(seconds=5)
    assert 0.9 * LEASE.total_seconds() < job_held_for(name="nightly", key=DAY)


@pytest.mark.django_db
def test_a_failure_is_recorded_and_the_next_claim_takes_the_run_over_at_once():
    with pytest.raises(ZeroDivisionError), job_run("nightly", DAY, lease=LEASE) as run:
        job_heartbeat(run, progress={"step": 1})
        1 / 0  # noqa: B018

    failed = JobRun.objects.get()
    assert failed.state == "FAILED" and failed.error == "ZeroDivisionError: division by zero"
    assert failed.finished_at is not None and failed.lease_until is None
    assert job_held_for(name="nightly", key=DAY) is None
    run = _claim("next")  # no lease to wait for
    assert (run.attempts, run.progress, run.error) == (2, {"step": 1}, "")


@pytest.mark.django_db
def test_a_job_can_finish_its_run_failed_without_raising():
    with job_run("nightly", DAY, lease=LEASE) as run:
        assert job_finish(run, error="branch 7: store down")
    stored = JobRun.objects.get()
    assert (stored.state, stored.error) == ("FAILED", "branch 7: store down")


@pytest.mark.django_db
def test_a_done_run_is_run_again_only_when_forced():
    with job_run("nightly", DAY, lease=LEASE) as run:
        job_heartbeat(run, progress={"step": 9}, counts={"rows": 9})
    assert JobRun.objects.get().state == "DONE"

    with job_run("nightly", DAY, lease=LEASE) as again:
        assert again is None
    assert _claim("redelivered") is None
    assert job_held_for(name="nightly", key=DAY) is None

    forced = _claim("operator", force=True)
    assert (forced.state, forced.owner, forced.attempts) == ("RUNNING", "operator", 2)
    assert forced.progress == {} and forced.counts == {}  # a rerun starts over
    assert forced.finished_at is None


@pytest.mark.django_db
def test_runs_are_per_job_and_key():
    assert _claim("a") is not None
    assert _claim("b", key=DAY + datetime.timedelta(days=1)) is not None
    assert job_claim(name="other", key=DAY, lease=LEASE) is not None
    assert JobRun.objects.count() == 3


@pytest.mark.django_db
def test_held_for_says_how_long_the_lease_has_left():
    assert job_held_for(name="nightly", key=DAY) is None  # no run
    job_claim(name="nightly", key=DAY, lease=datetime.timedelta(seconds=120))
    assert 110 < job_held_for(name="nightly", key=DAY) <= 120
    _lapse()
    assert job_held_for(name="nightly", key=DAY) is None


def test_worker_ids_differ_between_workers_of_one_process():
    ids = {worker_id() for _ in range(50)}
    assert len(ids) == 50
    host, pid, _ = next(iter(ids)).split(":")
    assert host and pid.isdigit()


@pytest.mark.django_db(transaction=True)
def test_never_two_owners_under_real_concurrency():
    """Eight workers claim a new run at once, then take a lapsed one over at once, then a
    failed one, then force a done one: each time exactly one owns it."""
    workers = 8

    def claim(index: int, force: bool = False):
        return _claim(f"worker-{index}", force=force)

    for round_ in ("new", "lapsed", "failed", "forced"):
        if round_ == "lapsed":
            _lapse()
        elif round_ == "failed":
            job_finish(JobRun.objects.get(), error="boom")
        elif round_ == "forced":
            job_finish(JobRun.objects.get())
        forced = round_ == "forced"
        results = in_threads(*(partial(claim, i, force=forced) for i in range(workers)))
        assert not [r for r in results if isinstance(r, Exception)], results
        owners = [r for r in results if r is not None]
        assert len(owners) == 1, round_
        stored = JobRun.objects.get()
        assert (stored.owner, stored.state) == (owners[0].owner, "RUNNING"), round_
    assert JobRun.objects.get().attempts == 4


@pytest.mark.django_db(transaction=True)
def test_a_slow_owner_and_its_successor_never_both_write():
    """The old owner's checkpoints race the take-over: once the new owner holds the run,
    every write of the old one is refused, whichever thread the database serves first."""
    old = _claim("old")
    _lapse()

    def beat():
        for step in range(20):
            job_heartbeat(old, progress={"step": step})
        return "old kept it"

    new, outcome = in_threads(lambda: _claim("new"), beat)
    stored = JobRun.objects.get()
    if new is None:  # the old owner's heartbeat renewed the lease first
        assert outcome == "old kept it" and stored.owner == "old"
    else:
        assert isinstance(outcome, JobLost) and stored.owner == "new"
        assert (stored.attempts, stored.progress) == (2, {})  # not one step of the old owner


BEFORE = [
    ("mandates", "0005_delete_mandatetransition"),
    ("reconciliation", "0004_delete_dcr_dbs_history"),
]


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_both_old_guards_into_job_runs():
    then = timezone.now() - datetime.timedelta(days=3)
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        presentation = old.get_model("mandates", "PresentationRun")
        presentation.objects.create(run_date=DAY, finished_at=then, presented=24, notices=3)
        presentation.objects.create(run_date=DAY + datetime.timedelta(days=1), claimed_until=then)
        old.get_model("reconciliation", "JobRun").objects.create(
            job="dcr_daily@1800", business_date=DAY, state="FAILED", owner="host:1:ab",
            attempts=2, branches_total=6, branches_done=4, started_at=then,
            heartbeat_at=then, finished_at=then, error="branch 7: store down",
        )  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    runs = {(run.name, run.key): run for run in JobRun.objects.all()}
    done = runs["mandates_presentation", "2026-12-04"]
    assert (done.state, done.finished_at, done.counts) == (
        "DONE", then, {"presented": 24, "notices": 3}
    )  # fmt: skip
    lapsed = runs["mandates_presentation", "2026-12-05"]
    assert (lapsed.state, lapsed.lease_until, lapsed.finished_at) == ("RUNNING", then, None)
    failed = runs["dcr_daily@1800", "2026-12-04"]
    assert (failed.state, failed.owner, failed.attempts, failed.error) == (
        "FAILED", "host:1:ab", 2, "branch 7: store down"
    )  # fmt: skip
    assert failed.counts == {"branches_total": 6, "branches_done": 4} and failed.progress == {}
    assert len(runs) == 3
    tables = set(connection.introspection.table_names())
    assert not {"mandates_presentationrun", "reconciliation_jobrun"} & tables
    # the copies are guarded like any run: the lapsed one and the failed one are taken over
    assert job_claim(name="mandates_presentation", key="2026-12-05", lease=LEASE) is not None
    assert job_claim(name="dcr_daily@1800", key=DAY, lease=LEASE) is not None
    assert job_claim(name="mandates_presentation", key=DAY, lease=LEASE) is None
