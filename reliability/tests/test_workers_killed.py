"""A real Celery worker SIGKILLed in the middle of its work, then a new one started.

How "in the middle" is made certain without a hook in the product code: the test holds a
Postgres row lock (from a connection of its own) on a row the worker will need part-way
through the job. The worker does the work before that row, then waits on the lock; the
test sees it waiting (``pg_blocking_pids``), checks that some but not all of the work is
done, and SIGKILLs the worker's process group. Only then is the lock released: the dead
worker's open transaction is rolled back by the server. A new worker is started and must
finish the job from what the dead one left (expired leases, a redelivered task, a claimed
daily run), with every effect exactly once. Each scenario ends with the payments
integrity check reporting no difference, and prints its figures.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from core.models import JobRun
from core.money import from_paise
from loans.models import Instalment, LoanAccount
from mandates.ddb_models import MandateExecutionItem
from mandates.models import ExecutionResult, PresentationBatch, ScheduledPresentation
from mandates.selectors import executions_by_id
from mandates.services import PRESENTATION_JOB, execution_id_for
from mandates.tasks import mandates_daily_task
from notifications.ddb_models import NotificationItem
from payments.ddb_models import QueueItem, TransactionItem, queue_query
from payments.models import Posting
from payments.services import business_date_for, payment_ingest
from reconciliation.models import Dbs, Dcr
from reconciliation.services import dbs_refresh, dcr_build_many
from reconciliation.tasks import reconciliation_tick_task
from reliability.services import figures
from tests import factories as recon
from tests.factories import (
    BankingPartnerFactory,
    BranchFactory,
    UserFactory,
    active_mandate,
    actors,
    make_loan,
    payment,
    templates_seed,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _queue(status: str) -> list[QueueItem]:
    return queue_query(status)


def _waiting_backend(row_locks, wait_until, *, what: str) -> tuple[int, int]:
    """Wait until a worker waits on one of our locks: (its Postgres backend's pid, the pid
    of the lock it waits for)."""
    waiting = wait_until(row_locks.waiters, timeout=60, what=f"the worker waiting on {what}")
    return next(iter(waiting.items()))


# --- Posting ----------------------------------------------------------------------------

LOANS, PAYMENTS = 24, 240


def test_a_worker_killed_while_posting_a_leased_batch_posts_each_payment_once(
    celery_workers, row_locks, wait_until, ledger_agrees
):
    """The posting sweep (sent by beat every 5 s) leases up to 200 queue items at once,
    then posts them one by one. The per-payment tasks that ingestion sends are dropped, as
    when the broker was unreachable then, so that the sweep does all of the posting: the
    worst case for a kill, since the dead worker holds 200 leases. The test locks the
    loan row of the payment at position ``LOCKED``: the worker posts the ones before it,
    then waits for that loan inside its posting transaction. Killed there, it leaves
    leased items behind, which the next worker's sweep takes over once the leases
    (``PAYMENTS_POSTING_LEASE_SECONDS``, 5 s here) have run out."""
    templates_seed()  # the receipt's: an earlier transactional test's flush removed it
    branch = BranchFactory()
    loans = [make_loan(branch=branch) for _ in range(LOANS)]
    principal = UserFactory(is_superuser=True)
    paid: dict[int, Decimal] = defaultdict(Decimal)
    txn_ids = []
    for i in range(PAYMENTS):
        loan = loans[i % LOANS]
        amount = Decimal(100 + i % 50)
        result = payment_ingest(
            payment=payment(loan, amount=str(amount), receipt_number=f"R-{i}"),
            idempotency_key=f"kill-posting-{i}",
            principal=principal,
            source="test",
        )
        txn_ids.append(result.body["txn_id"])
        paid[loan.pk] += amount
    celery_workers.drop_queued()

    locked = 20  # the first payment of loans[20]
    lock = row_locks.hold(LoanAccount, loans[locked].pk)
    first = celery_workers.start()
    celery_workers.start_beat()
    began = time.monotonic()
    backend, _ = _waiting_backend(row_locks, wait_until, what="the locked loan")
    posted_before = Posting.objects.count()
    leased = {item.item_id for item in _queue("LEASED")}
    assert 0 < posted_before < PAYMENTS
    assert len(leased) > 1 and txn_ids[locked] in leased
    assert not Posting.objects.filter(loan=loans[locked]).exists()
    first.kill()
    killed_at = time.monotonic()
    row_locks.release(lock)
    wait_until(
        lambda: not row_locks.backend_alive(backend), timeout=30, what="the dead worker's backend"
    )
    assert Posting.objects.count() == posted_before  # its open transaction was rolled back

    celery_workers.start(concurrency=2)
    wait_until(
        lambda: Posting.objects.count() == PAYMENTS and not _queue("READY") + _queue("LEASED"),
        timeout=120,
        what=f"{PAYMENTS} postings and an empty queue\n{celery_workers.log_text()}",
    )
    drained_after = time.monotonic() - killed_at

    # each payment posted exactly once, and the ledger moved by exactly what was paid
    assert set(Posting.objects.values_list("txn_id", flat=True)) == set(txn_ids)
    assert {t.status for t in TransactionItem.scan()} == {"POSTED"}
    items = {item.item_id: item for item in QueueItem.scan()}
    assert {item.queue_status for item in items.values()} == {"POSTING#DONE"}
    # the dead worker's leases ran out and were claimed again
    assert all(int(items[item_id].attempts) >= 2 for item_id in leased)
    for loan in loans:
        posted = Posting.objects.filter(loan=loan).aggregate(s=Sum("amount"), e=Sum("excess"))
        applied = Instalment.objects.filter(loan=loan).aggregate(
            c=Sum("charges_paid"), i=Sum("interest_paid"), p=Sum("principal_paid")
        )
        assert posted["s"] == paid[loan.pk]
        assert applied["c"] + applied["i"] + applied["p"] == posted["s"] - posted["e"]
    receipts = Counter(
        n.entity for n in NotificationItem.scan() if n.template_code == "receipt"
        if n.status != "PENDING"
    )  # fmt: skip
    assert receipts == Counter(f"payments.transaction#{t}" for t in txn_ids)

    figures(
        "worker killed while posting",
        payments=PAYMENTS,
        loans=LOANS,
        posted_before_kill=posted_before,
        leased_by_dead_worker=len(leased),
        blocked_after_s=round(killed_at - began, 1),
        drained_after_kill_s=round(drained_after, 1),
        reclaimed=sum(int(items[i].attempts) >= 2 for i in leased),
        postings=Posting.objects.count(),
        total=f"₹{from_paise(sum(int(t.amount_paise) for t in TransactionItem.scan()))}",
        integrity=ledger_agrees(),
    )


# --- The daily mandate presentation -----------------------------------------------------

MANDATES_PER_PARTNER = 12


def test_a_worker_killed_while_presenting_resumes_without_presenting_twice(
    celery_workers, row_locks, wait_until, ledger_agrees
):
    """Two banking partners, one batch each. The daily task presents partner A's batch
    (committed), then writes partner B's executions to DynamoDB (already in their presented
    form; the presentations in Postgres are the truth of what was presented) and, in one
    Postgres transaction, marks B's presentations PRESENTED: the test locks one of those
    rows, so the worker waits there with half of B marked and nothing of it committed.
    Killed there, it leaves the day's run claimed and its task unacknowledged. The broker
    delivers the task again to the next worker after the visibility timeout (10 s here),
    once the run's lease (5 s here) has run out: the resumed run presents only B, with
    the same deterministic execution ids. The sandbox partner's results then come back,
    each success becoming a NACH payment that is posted."""
    today = timezone.localdate()
    branch = BranchFactory()
    people = actors(branch)
    partner_a = BankingPartnerFactory()
    partner_b = BankingPartnerFactory(
        code="sandbox-b", name="Sandbox Bank B", ifsc="SBOX0000002", nach_utility_code="SBOX0002"
    )
    for partner in (partner_a, partner_b):
        for _ in range(MANDATES_PER_PARTNER):
            loan = make_loan(branch=branch, disbursed_on=today - timedelta(days=20))
            mandate = active_mandate(
                loan,
                people,
                banking_partner=partner,
                start_date=today - timedelta(days=30),
                end_date=today + timedelta(days=730),
            )
            first = ScheduledPresentation.objects.filter(mandate=mandate).earliest("due_date")
            # due today (whatever the weekday the suite runs on)
            ScheduledPresentation.objects.filter(pk=first.pk).update(presentation_date=today)
    due = ScheduledPresentation.objects.filter(presentation_date=today)
    of_b = list(due.filter(mandate__banking_partner=partner_b).order_by("id"))
    total = 2 * MANDATES_PER_PARTNER
    assert due.count() == total

    lock = row_locks.hold(ScheduledPresentation, of_b[len(of_b) // 2].pk)
    first_worker = celery_workers.start()
    began = time.monotonic()
    mandates_daily_task.delay()
    backend, _ = _waiting_backend(row_locks, wait_until, what="partner B's presentation")
    statuses = set(due.values_list("mandate__banking_partner", "status"))
    assert statuses == {(partner_a.pk, "PRESENTED"), (partner_b.pk, "SCHEDULED")}
    executions_at_kill = MandateExecutionItem.count()
    assert executions_at_kill == total  # B's were written to DynamoDB, not yet committed
    # written PRESENTED, yet not presented: the uncommitted rows are the truth, and the
    # check of a partner's results knows none of B's
    b_executions = [execution_id_for(r, 1) for r in of_b]
    assert {MandateExecutionItem.get(e).status for e in b_executions} == {"PRESENTED"}
    assert executions_by_id(b_executions) == {}
    presentation_run = JobRun.objects.filter(name=PRESENTATION_JOB, key=today.isoformat())
    assert presentation_run.get().finished_at is None
    first_worker.kill()
    killed_at = time.monotonic()
    row_locks.release(lock)
    wait_until(
        lambda: not row_locks.backend_alive(backend), timeout=30, what="the dead worker's backend"
    )
    assert set(due.filter(mandate__banking_partner=partner_b).values_list("status", flat=True)) == {
        "SCHEDULED"
    }
    assert PresentationBatch.objects.get(partner=partner_b).count == 0

    celery_workers.start(concurrency=2)
    wait_until(
        lambda: (
            ExecutionResult.objects.count() == total
            and Posting.objects.count() == total
            and not _queue("READY") + _queue("LEASED")
        ),
        timeout=120,
        what=f"{total} results applied and posted\n{celery_workers.log_text()}",
    )
    recovered_after = time.monotonic() - killed_at

    rows = list(due)
    assert {(r.status, r.attempts) for r in rows} == {("SUCCEEDED", 1)}
    expected_ids = {execution_id_for(r, 1) for r in rows}
    executions = list(MandateExecutionItem.scan())
    assert sorted(e.execution_id for e in executions) == sorted(expected_ids)
    assert {e.status for e in executions} == {"SUCCESS"}
    assert set(ExecutionResult.objects.values_list("execution_id", flat=True)) == expected_ids
    for partner in (partner_a, partner_b):
        batch = PresentationBatch.objects.get(partner=partner, run_date=today)
        presented = [r for r in rows if r.mandate.banking_partner_id == partner.pk]
        assert batch.count == len(presented) == MANDATES_PER_PARTNER
        assert batch.total == sum(r.amount for r in presented)
    run = presentation_run.get()
    assert run.finished_at is not None
    assert run.counts["presented"] == total  # the killed run's batch counts too
    nach = {t.receipt_number: t for t in TransactionItem.scan()}
    assert set(nach) == {f"NACH-{e}" for e in expected_ids}
    assert {t.status for t in nach.values()} == {"POSTED"}
    assert set(Posting.objects.values_list("mode", flat=True)) == {"NACH"}

    figures(
        "worker killed while presenting",
        mandates=total,
        partners=2,
        presented_before_kill=MANDATES_PER_PARTNER,
        executions_written_at_kill=executions_at_kill,
        blocked_after_s=round(killed_at - began, 1),
        results_posted_after_kill_s=round(recovered_after, 1),
        executions=len(executions),
        results=ExecutionResult.objects.count(),
        nach_postings=Posting.objects.count(),
        integrity=ledger_agrees(),
    )


# --- The daily DCR aggregation ----------------------------------------------------------

BRANCHES, PAYMENTS_PER_BRANCH = 6, 10


def _dcr_snapshot(day) -> dict:
    """Every figure of the day's DCRs, their lines and DBSs (not when they were computed)."""
    snapshot = {}
    for dcr in Dcr.objects.filter(business_date=day).prefetch_related("lines"):
        dbs = Dbs.objects.get(branch_id=dcr.branch_id, business_date=day)
        snapshot[dcr.branch_id] = {
            "dcr": (
                dcr.status, dcr.is_provisional, dcr.collected_count, dcr.collected_amount,
                dcr.cash_amount, dcr.excluded_count, dcr.excluded_amount, sorted(dcr.txn_ids),
            ),
            "lines": sorted((ln.dimension, ln.key, ln.count, ln.amount) for ln in dcr.lines.all()),
            "dbs": (
                dbs.opening_cash, dbs.cash_collected, dbs.deposits_total, dbs.closing_cash,
                dbs.dcr_id, dbs.flags,
            ),
        }  # fmt: skip
    return snapshot


def test_a_worker_killed_during_the_dcr_aggregation_leaves_no_half_written_dcr(
    celery_workers, row_locks, wait_until, ledger_agrees
):
    """The 15-minute tick builds the DCRs of the closed business date, one Postgres
    transaction per branch: the DCR with its lines, then its DBS. The test locks every
    branch's DBS row, each from its own connection, and releases them one at a time as
    the worker reaches them: two branches are written, and the worker is killed while it
    waits for the third branch's DBS, with that branch's DCR written but not committed.
    Its daily job run stays RUNNING with a lapsing lease; the tick task is delivered
    again to the next worker, which takes the job over (after 5 s here) and builds the
    branches its checkpoint does not hold. The figures must equal a clean build, and no
    DCR is ever half-written."""
    branches, collected = [], {}
    principal = recon.UserFactory(is_superuser=True)
    # the cut-off 12 hours away: the closed date cannot change while the test runs
    cutoff = (timezone.localtime() + timedelta(hours=12)).time().replace(microsecond=0)
    for b in range(BRANCHES):
        branch, loan = recon.branch_with_loan(cutoff_time=cutoff)
        branches.append(branch)
        closed = business_date_for(branch, timezone.now()) - timedelta(days=1)
        amounts = {"CASH": Decimal(0), "ALL": Decimal(0)}
        for i in range(PAYMENTS_PER_BRANCH):
            amount = Decimal(100 * (b + 1) + i)
            mode = "CASH" if i % 3 else "UPI"
            recon.pay(loan, str(amount), mode=mode, collector=f"Agent {i % 2}", day=closed,
                      principal=principal)  # fmt: skip
            amounts["ALL"] += amount
            amounts["CASH"] += amount if mode == "CASH" else 0
        collected[branch.pk] = amounts
        dbs_refresh(branch_id=branch.pk, business_date=closed)
    locks = {row_locks.hold(Dbs, dbs.pk): dbs.branch_id for dbs in Dbs.objects.all()}

    first_worker = celery_workers.start()
    began = time.monotonic()
    reconciliation_tick_task.delay()
    released = []
    for _ in range(3):
        waiting, holder = _waiting_backend(row_locks, wait_until, what="a branch's DBS")
        if len(released) < 2:  # let it write this branch and go on to the next one
            row_locks.release(holder)
            released.append(locks[holder])
    blocked_on = locks[holder]
    job = JobRun.objects.get(name__startswith="dcr_daily", key=closed.isoformat())
    assert (job.state, job.counts["branches_done"]) == ("RUNNING", 2)
    written = set(Dcr.objects.filter(business_date=closed).values_list("branch_id", flat=True))
    assert written == set(released)
    first_worker.kill()
    killed_at = time.monotonic()
    row_locks.release_all()
    wait_until(
        lambda: not row_locks.backend_alive(waiting), timeout=30, what="the dead worker's backend"
    )
    # the branch it was writing has no DCR at all: its transaction was rolled back whole
    assert not Dcr.objects.filter(branch_id=blocked_on, business_date=closed).exists()
    assert Dbs.objects.get(branch_id=blocked_on, business_date=closed).cash_collected == 0

    celery_workers.start(concurrency=2)
    wait_until(
        lambda: (
            JobRun.objects.filter(pk=job.pk, state="DONE").exists()
            and Posting.objects.count() == BRANCHES * PAYMENTS_PER_BRANCH
        ),
        timeout=120,
        what=f"the daily job done and the payments posted\n{celery_workers.log_text()}",
    )
    recovered_after = time.monotonic() - killed_at
    job.refresh_from_db()
    assert (job.attempts, job.counts["branches_done"]) == (2, BRANCHES)

    after_recovery = _dcr_snapshot(closed)
    assert set(after_recovery) == {b.pk for b in branches}
    for branch_id, figures_of in after_recovery.items():
        status, provisional, count, amount, cash = figures_of["dcr"][:5]
        assert (status, provisional) == ("DRAFT", False)
        assert (count, amount, cash) == (
            PAYMENTS_PER_BRANCH, collected[branch_id]["ALL"], collected[branch_id]["CASH"]
        )  # fmt: skip
        assert figures_of["dbs"][1] == cash
    clean = dcr_build_many(pairs=[(b.pk, closed) for b in branches])
    assert clean.written == BRANCHES and not clean.failed
    rebuilt = _dcr_snapshot(closed)
    differing = [b for b in after_recovery if rebuilt.get(b) != after_recovery[b]]
    assert not differing, (after_recovery, rebuilt)

    figures(
        "worker killed during the DCR aggregation",
        branches=BRANCHES,
        payments=BRANCHES * PAYMENTS_PER_BRANCH,
        committed_before_kill=len(released),
        blocked_after_s=round(killed_at - began, 1),
        job_done_after_kill_s=round(recovered_after, 1),
        job_attempts=job.attempts,
        dcrs=len(after_recovery),
        branches_differing_from_a_clean_build=len(differing),
        integrity=ledger_agrees(),
    )
