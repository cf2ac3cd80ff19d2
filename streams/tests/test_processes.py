"""The processor as it runs: ``manage.py streams_process`` in processes of its own, against
DynamoDB Local's stream and this run's test database (``tests.processes.run_env``).

- A processor SIGKILLed while a batch is applied and not yet checkpointed (the test-only
  ``STREAMS_CHECKPOINT_DELAY_SECONDS`` holds it there, and it says so in its log): nothing of
  the batch is committed, the next process resumes after the last checkpoint, and the
  figures equal the daily build's, each record counted once.
- Two processors started at once: one takes the shard's lease, the other waits; killed, the
  holder's lease is taken over by the other once it has expired, and the figures are right.

Short leases and polls (``STREAMS_LEASE_SECONDS``, ``STREAMS_POLL_SECONDS``) keep it quick.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db.models.functions import Now

from reconciliation import services as recon
from reconciliation.models import Dcr
from streams.models import ShardLease
from streams.tests.cases import a_day_of_payments, open_day, snapshot
from tests.factories import branch_with_loan, pay
from tests.processes import Process, project_run, run_env, spawn, wait_started, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
FAST = {
    "STREAMS_LEASE_SECONDS": "8",  # a live holder renews it every poll, also on a busy machine
    "STREAMS_POLL_SECONDS": "0.2",
    "TEST_LOG_LEVEL": "INFO",  # "took <shard>": which process took a lease, and from whom
}
STARTED = re.compile(r"stream transactions: processor (?P<owner>\S+) started")
PAUSED = re.compile(r"stream transactions: (?P<records>\d+) record\(s\) of (?P<shard>\S+) applied")
APPLIED = re.compile(r"stream transactions: (?P<records>\d+) record\(s\) applied, stopped")


@dataclass
class Processor:
    process: Process
    owner: str  # as the lease rows name it


class Processors:
    def __init__(self, directory) -> None:
        self.directory = directory
        self.started: list[Processor] = []

    def start(self, *names: str, **settings: str) -> list[Processor]:
        """A ``streams_process`` a name, all spawned before any is waited for (started at
        once), each returned once it has said its owner name; they run until stopped."""
        args = [sys.executable, "manage.py", "streams_process"]
        env = run_env(**FAST, **settings)
        spawned = [spawn(name, args, env, self.directory / f"{name}.log") for name in names]
        for process in spawned:
            wait_started(process, lambda p=process: STARTED.search(p.log_text()) is not None)
            self.started.append(Processor(process, STARTED.search(process.log_text())["owner"]))
        return self.started[-len(names) :]

    def until_idle(self) -> int:
        """``streams_process --until-idle`` to its end; the records it applied."""
        done = project_run("manage.py", "streams_process", "--until-idle", env=run_env(**FAST))
        assert done.returncode == 0, done.stderr[-3000:]
        return int(APPLIED.search(done.stdout)["records"])

    def stop_all(self) -> None:
        for processor in self.started:
            processor.process.stop()


@pytest.fixture
def processors(tmp_path):
    started = Processors(tmp_path)
    yield started
    started.stop_all()


def open_lease() -> ShardLease:
    return ShardLease.objects.get(finished_at__isnull=True)


def equal_to_the_daily_build(branch) -> tuple:
    live = snapshot(branch)
    recon.dcr_build(branch_id=branch.pk, business_date=open_day(branch))  # the daily job's
    assert snapshot(branch) == live
    return live


def test_a_processor_killed_mid_batch_commits_none_of_it_and_the_next_counts_each_record_once(
    at_tip, processors
):
    branch, loan = branch_with_loan()
    day = open_day(branch)
    pay(loan, "100.00", day=day)
    pay(loan, "200.00", mode="UPI", collector="Agent B", day=day)
    assert processors.until_idle() == 2  # applied and checkpointed
    checkpoint = open_lease().checkpoint
    other, ids = a_day_of_payments()
    pay(loan, "300.00", day=day)

    [dying] = processors.start("dying", STREAMS_CHECKPOINT_DELAY_SECONDS="600")
    paused = wait_until(
        lambda: PAUSED.search(dying.process.log_text()),
        timeout=60,
        what="the batch applied and its checkpoint not yet written",
    )
    dying.process.kill()  # SIGKILL: its open transaction is rolled back by the server

    lease = open_lease()
    assert (lease.shard_id, lease.checkpoint, lease.owner) == (
        paused["shard"],
        checkpoint,
        dying.owner,
    )  # dead, still holding until the lease expires
    assert not Dcr.objects.filter(branch=other).exists()
    assert Dcr.objects.get(branch=branch, business_date=day).collected_amount == D("300.00")

    wait_until(
        lambda: ShardLease.objects.filter(pk=lease.pk, lease_expires_at__lt=Now()).exists(),
        timeout=30,
        what="the dead processor's lease expired",
    )
    restarted = processors.until_idle()

    assert restarted >= int(paused["records"]) > 0  # the killed batch, read again
    assert open_lease().records_applied == 2 + restarted  # nothing of the dead one's counted
    collected, amount, *_ = equal_to_the_daily_build(branch)
    assert (collected, amount) == (3, D("600.00"))
    collected, amount, cash, excluded, excluded_amount, txn_ids, excluded_ids, *_ = (
        equal_to_the_daily_build(other)
    )
    assert (collected, amount, cash) == (3, D("1349.50"), D("1000.00"))
    assert (excluded, excluded_amount) == (2, D("1100.00"))
    assert txn_ids == sorted([*ids["posted"], ids["received"]])
    assert excluded_ids == sorted([ids["failed"], ids["reversed"]])


def collected_count(branch) -> int:
    dcr = Dcr.objects.filter(branch=branch, business_date=open_day(branch)).first()
    return dcr.collected_count if dcr else 0


def test_two_processors_started_at_once_one_holds_the_lease_the_other_takes_over_on_expiry(
    at_tip, processors
):
    one, two = processors.start("one", "two")
    branch, loan = branch_with_loan()
    day = open_day(branch)
    for amount in ("10.00", "20.00", "30.00"):
        pay(loan, amount, day=day)
    wait_until(lambda: collected_count(branch) == 3, timeout=60, what="3 payments applied")

    lease = open_lease()
    [holder] = [p for p in (one, two) if p.owner == lease.owner]
    [standby] = [p for p in (one, two) if p is not holder]
    took = f"took {lease.shard_id}"
    assert took in holder.process.log_text()
    assert took not in standby.process.log_text()  # it never took the shard, nor read it

    holder.process.kill()
    expires = ShardLease.objects.get(pk=lease.pk).lease_expires_at
    pay(loan, "40.00", day=day)
    pay(loan, "50.00", mode="UPI", collector="Agent B", day=day)
    seen: list[tuple] = []

    def taken_over() -> bool:
        row = ShardLease.objects.annotate(now=Now()).get(pk=lease.pk)
        seen.append((row.now, row.owner))
        return row.owner == standby.owner

    wait_until(taken_over, timeout=60, what="the standby took the lease over", interval=0.1)
    wait_until(lambda: collected_count(branch) == 5, timeout=60, what="5 payments applied")

    assert all(owner == holder.owner for now, owner in seen if now < expires)  # not before
    assert f"{took} over from {holder.owner}" in standby.process.log_text()
    collected, amount, cash, *_ = equal_to_the_daily_build(branch)
    assert (collected, amount, cash) == (5, D("150.00"), D("100.00"))

    standby.process.stop()  # SIGTERM: the batch in hand finished, the lease given up
    assert standby.process.popen.returncode == 0
    assert APPLIED.search(standby.process.log_text())["records"] == "2"
    assert ShardLease.objects.get(pk=lease.pk).owner == ""
