import datetime
import time
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from audit.models import AuditMessage
from core.jobs import job_claim
from core.models import JobRun
from payments.services import business_date_for
from reconciliation import services
from reconciliation.exceptions import AlreadyDecided
from reconciliation.models import Dbs, Dcr
from tests.concurrency import in_threads
from tests.factories import UserFactory, branch_with_loan, days_ago, pay


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_daily_runs_for_the_same_date_run_once():
    branches = []
    for _ in range(3):
        branch, loan = branch_with_loan()
        pay(loan, "100.00")
        branches.append(branch.pk)
    day = days_ago(1)

    def run():
        return services.dcr_daily_run(job="dcr_daily@1800", business_date=day, branch_ids=branches)

    outcomes = in_threads(run, run)
    assert sorted(outcomes) == ["done", "skipped"]
    assert run() == "skipped"  # a redelivered task later: nothing to do
    job = JobRun.objects.get()
    assert (job.state, job.attempts, job.counts["branches_done"]) == ("DONE", 1, 3)
    assert Dcr.objects.filter(business_date=day).count() == 3
    assert Dbs.objects.filter(business_date=day).count() == 3


FAIL_FOR_BRANCH = """
CREATE OR REPLACE FUNCTION recon_test_fail() RETURNS trigger AS $$
BEGIN
  IF (SELECT branch_id FROM reconciliation_dcr WHERE id = NEW.dcr_id) = %s THEN
    RAISE EXCEPTION 'injected failure while writing the DCR';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER recon_test_fail BEFORE INSERT ON reconciliation_dcrline
  FOR EACH ROW EXECUTE FUNCTION recon_test_fail();
"""
DROP_FAILURE = """
DROP TRIGGER IF EXISTS recon_test_fail ON reconciliation_dcrline;
DROP FUNCTION IF EXISTS recon_test_fail();
"""


@pytest.mark.django_db(transaction=True)
def test_a_run_failing_half_way_leaves_no_half_written_dcr_and_resumes():
    loans = []
    for _ in range(3):
        branch, loan = branch_with_loan()
        pay(loan, "250.00")
        loans.append((branch, loan))
    ids = [branch.pk for branch, _ in loans]
    broken = ids[1]
    day = days_ago(1)
    with connection.cursor() as cursor:
        cursor.execute(FAIL_FOR_BRANCH % int(broken))  # a real database failure mid-upsert
    try:
        outcome = services.dcr_daily_run(job="dcr_daily@1800", business_date=day, branch_ids=ids)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(DROP_FAILURE)
    assert outcome == "failed"
    # the failed branch's transaction rolled back whole: no DCR row, no lines, no DBS
    assert not Dcr.objects.filter(branch_id=broken).exists()
    assert not Dbs.objects.filter(branch_id=broken).exists()
    assert Dcr.objects.filter(branch_id__in=ids).count() == 2
    job = JobRun.objects.get()
    assert job.state == "FAILED" and "injected failure" in job.error
    written = dict(Dcr.objects.values_list("branch_id", "computed_at"))

    assert services.dcr_daily_run(job="dcr_daily@1800", business_date=day, branch_ids=ids) == "done"
    # resumed from its checkpoint: the branches written before are not built again
    assert {
        b: at for b, at in Dcr.objects.values_list("branch_id", "computed_at") if b in written
    } == written
    job.refresh_from_db()
    assert (job.state, job.attempts, job.counts["branches_done"]) == ("DONE", 2, 3)
    for branch_id in ids:
        dcr = Dcr.objects.get(branch_id=branch_id, business_date=day)
        assert (dcr.collected_count, dcr.collected_amount) == (1, Decimal("250.00"))
        assert dcr.lines.count() == 2  # one mode, one collector, nothing excluded


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_taken_over_after_the_lease():
    day = days_ago(1)
    lease = services.JOB_LEASE
    assert job_claim(name="j", key=day, lease=lease, owner="dead") is not None
    assert job_claim(name="j", key=day, lease=lease, owner="second") is None
    JobRun.objects.update(lease_until=timezone.now() - datetime.timedelta(1))
    claimed = job_claim(name="j", key=day, lease=lease, owner="third")
    assert claimed.owner == "third" and claimed.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_one_wins_with_one_audit_transition():
    branch, loan = branch_with_loan()
    pay(loan)
    dcr = services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    services.dcr_submit(dcr_id=dcr.pk, actor=UserFactory(role="Branch Manager", home_branch=branch))
    first, second = (
        UserFactory(role="Area Manager", home_area=branch.area),
        UserFactory(role="Area Manager", home_area=branch.area),
    )
    results = in_threads(
        lambda: services.dcr_approve(dcr_id=dcr.pk, actor=first),
        lambda: services.dcr_approve(dcr_id=dcr.pk, actor=second),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], AlreadyDecided)
    assert errors[0].code == "already_decided"
    dcr.refresh_from_db()
    assert dcr.status == "APPROVED"
    approvals = [
        row
        for row in AuditMessage.objects.filter(
            ref=f"reconciliation.dcr#{dcr.pk}", payload__action="transition"
        )
        if row.changes.get("status") == ["SUBMITTED", "APPROVED"]
    ]
    assert len(approvals) == 1
    assert dcr.history.filter(to_status="APPROVED").count() == 1


@pytest.mark.django_db
def test_the_tick_rolls_up_today_provisionally_builds_closed_dates_and_records_late_arrivals():
    branch, loan = branch_with_loan()
    now = timezone.now()
    today = business_date_for(branch, now)
    pay(loan, "40.00", day=today)
    pay(loan, "60.00", day=today - datetime.timedelta(days=1))
    summary = services.reconciliation_tick(now=now)
    provisional = Dcr.objects.get(branch=branch, business_date=today)
    assert provisional.is_provisional and provisional.collected_amount == Decimal("40.00")
    closed = Dcr.objects.get(branch=branch, business_date=today - datetime.timedelta(days=1))
    assert not closed.is_provisional and closed.collected_amount == Decimal("60.00")
    assert list(summary["daily"].values()) == ["done"]
    assert services.reconciliation_tick(now=now)["daily"] == {
        key: "skipped" for key in summary["daily"]
    }

    services.dcr_submit(
        dcr_id=closed.pk, actor=UserFactory(role="Branch Manager", home_branch=branch)
    )
    pay(loan, "5.00", day=closed.business_date)
    assert services.reconciliation_tick(now=now)["late_arrivals"] == 1
    closed.refresh_from_db()
    assert closed.collected_amount == Decimal("60.00")


@pytest.mark.django_db(transaction=True)
def test_the_tick_task_runs_through_an_embedded_worker():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from reconciliation.tasks import reconciliation_tick_task

    branch, loan = branch_with_loan()
    pay(loan, "10.00", day=days_ago(1))
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        reconciliation_tick_task.delay()
        deadline = time.monotonic() + 30
        while not JobRun.objects.filter(state="DONE").exists():
            assert time.monotonic() < deadline, "the tick did not run"
            time.sleep(0.2)
    assert Dcr.objects.filter(branch=branch).exists()


@pytest.mark.django_db
def test_the_command_builds_one_branch_and_a_range_and_reports_bad_input(capsys):
    branch, loan = branch_with_loan()
    pay(loan, "10.00", day=days_ago(2))
    pay(loan, "20.00", day=days_ago(1))
    call_command(
        "dcr_build", date=days_ago(2).isoformat(), to=days_ago(1).isoformat(), branch=branch.code,
        verbosity=0,
    )  # fmt: skip
    assert "2 DCR(s) written" in capsys.readouterr().out
    amounts = Dcr.objects.filter(branch=branch).order_by("business_date")
    assert [d.collected_amount for d in amounts] == [Decimal("10.00"), Decimal("20.00")]
    with pytest.raises(CommandError, match="no branch"):
        call_command("dcr_build", date=days_ago(1).isoformat(), branch="NOPE")
    with pytest.raises(CommandError, match="not a date"):
        call_command("dcr_build", date="31-12-2026")
