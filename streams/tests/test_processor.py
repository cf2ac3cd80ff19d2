import threading
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F
from django.test import override_settings
from django.utils import timezone

from dynamo import tables
from dynamo.connection import boto3_client
from payments.ddb_models import TransactionItem
from payments.services import payments_post_due
from reconciliation import services as recon
from reconciliation.models import Dcr
from reconciliation.selectors import branch_day_figures
from streams.metrics import StreamLagCollector, stream_lag_seconds
from streams.models import ShardLease
from streams.processor import StreamProcessor, leases_sync
from streams.sources import TRANSACTIONS
from streams.tests.cases import a_day_of_payments, open_day, snapshot
from tests.concurrency import in_threads
from tests.factories import branch_with_loan, pay

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


def process(**kwargs) -> int:
    return StreamProcessor(TRANSACTIONS, **kwargs).run(until_idle=True)


# --- Figures --------------------------------------------------------------------------------


def test_payments_make_todays_dcr_current_within_one_pass(at_tip):
    branch, loan = branch_with_loan()
    first = pay(loan, "1000.00", collector="Agent A", day=open_day(branch))
    second = pay(loan, "500.00", mode="UPI", collector="Agent B", day=open_day(branch))

    assert process() == 2

    dcr = Dcr.objects.get(branch=branch, business_date=open_day(branch))
    assert dcr.is_provisional and dcr.status == "DRAFT"
    assert (dcr.collected_count, dcr.collected_amount, dcr.cash_amount) == (
        2,
        D("1500.00"),
        D("1000.00"),
    )
    assert dcr.txn_ids == sorted([first, second])
    assert ShardLease.objects.get().records_applied == 2

    payments_post_due()  # RECEIVED > POSTED: still collected, the figures stay
    assert process() == 2
    dcr.refresh_from_db()
    assert (dcr.collected_count, dcr.collected_amount) == (2, D("1500.00"))


def test_the_figures_equal_the_daily_builds_for_the_same_day(at_tip):
    branch, ids = a_day_of_payments()

    process()
    live = snapshot(branch)
    recon.dcr_build(branch_id=branch.pk, business_date=open_day(branch))  # the daily job's build
    built = snapshot(branch)

    assert live == built
    collected, amount, cash, excluded, excluded_amount, txn_ids, excluded_ids, *_ = live
    assert (collected, amount, cash) == (3, D("1349.50"), D("1000.00"))
    assert (excluded, excluded_amount) == (2, D("1100.00"))
    assert txn_ids == sorted([*ids["posted"], ids["received"]])
    assert excluded_ids == sorted([ids["failed"], ids["reversed"]])


def test_a_record_seen_twice_changes_nothing(at_tip):
    branch, _ = a_day_of_payments()
    process()
    once = snapshot(branch)

    ShardLease.objects.update(checkpoint="")  # every record read and applied again
    assert process(initial_position="TRIM_HORIZON") > 0

    assert snapshot(branch) == once


def test_a_rollup_of_an_older_read_does_not_undo_what_the_stream_applied(at_tip):
    branch, loan = branch_with_loan()
    day = open_day(branch)
    read_before = branch_day_figures(branch_id=branch.pk, business_date=day)
    txn_id = pay(loan, "300.00", day=day)
    process()

    outcome, _ = recon.dcr_write(branch=branch, figures=read_before)  # read before the payment

    assert outcome == "stale"
    assert Dcr.objects.get(branch=branch, business_date=day).txn_ids == [txn_id]


# --- Kills, restarts, two processors -----------------------------------------------------------


def test_a_processor_killed_mid_batch_leaves_nothing_and_the_next_resumes(at_tip):
    branch, loan = branch_with_loan()
    day = open_day(branch)
    txn_ids = [pay(loan, f"{100 * n}.00", day=day) for n in range(1, 5)]
    checkpoint = ShardLease.objects.get().checkpoint

    def half_then_die(records):
        TRANSACTIONS.apply(records[: len(records) // 2])  # half the batch applied...
        raise SystemExit("killed")  # ...then the process dies before the checkpoint

    dying = StreamProcessor(TRANSACTIONS, apply=half_then_die, owner="dying")
    with pytest.raises(SystemExit):
        dying.run_once()

    assert not Dcr.objects.filter(branch=branch).exists()  # the half was rolled back
    lease = ShardLease.objects.get()
    assert (lease.checkpoint, lease.owner) == (checkpoint, "dying")  # dead, still holding
    assert StreamProcessor(TRANSACTIONS, owner="next").run_once().records == 0  # not expired
    ShardLease.objects.update(lease_expires_at=F("lease_expires_at") - timezone.timedelta(hours=1))

    assert StreamProcessor(TRANSACTIONS, owner="next").run(until_idle=True) == 4

    dcr = Dcr.objects.get(branch=branch, business_date=day)
    assert (dcr.collected_count, dcr.collected_amount) == (4, D("1000.00"))
    assert dcr.txn_ids == sorted(txn_ids)
    assert ShardLease.objects.get().owner == ""  # a clean stop gives the lease up


def test_a_restarted_processor_resumes_after_its_checkpoint(at_tip):
    branch, loan = branch_with_loan()
    day = open_day(branch)
    pay(loan, "100.00", day=day)
    assert process() == 1
    pay(loan, "200.00", day=day)

    assert process() == 1  # only the new record

    assert Dcr.objects.get(branch=branch, business_date=day).collected_amount == D("300.00")


def test_two_processors_started_at_once_never_read_the_same_shard(at_tip):
    branch, loan = branch_with_loan()
    day = open_day(branch)
    for _ in range(6):
        pay(loan, "10.00", day=day)
    reads: list[tuple[str, str]] = []
    owners = iter(["one", "two"])
    lock = threading.Lock()

    def work() -> int:
        with lock:
            owner = next(owners)
        processor = StreamProcessor(
            TRANSACTIONS, owner=owner, batch_size=2, on_read=lambda o, s: reads.append((o, s))
        )
        return sum(processor.run_once().records for _ in range(8))

    applied = in_threads(work, work, raise_errors=True)

    assert len({owner for owner, _ in reads}) == 1  # one shard, one reader
    assert sorted(applied) == [0, 6]
    assert Dcr.objects.get(branch=branch, business_date=day).collected_count == 6


def test_a_shard_being_read_can_be_neither_taken_nor_read_by_another(at_tip):
    branch, loan = branch_with_loan()
    pay(loan, "10.00", day=open_day(branch))
    inside, go_on = threading.Event(), threading.Event()

    def hold(owner, shard):
        inside.set()
        go_on.wait(30)

    # the reader's lease is expired as soon as taken: only the row lock of its read protects it
    reader = StreamProcessor(TRANSACTIONS, owner="reader", on_read=hold, lease_seconds=-1)
    thread = threading.Thread(target=reader.run_once)
    thread.start()
    other = StreamProcessor(TRANSACTIONS, owner="other")
    try:
        assert inside.wait(30)
        other.sync()
        assert other.take() == []
        assert other.run_once().shards_read == 0
    finally:
        go_on.set()
        thread.join(30)
    assert Dcr.objects.get(branch=branch).collected_amount == D("10.00")  # the reader applied it
    [shard] = other.take()  # expired and no longer being read: free to take
    reader.on_read = None
    assert reader.run_once().lost == [shard]  # the reader finds it lost and reads no more


def test_processors_share_the_shards_and_children_wait_for_their_parent():
    arn = "arn:aws:dynamodb:ddblocal:000000000000:table/x/stream/label"
    leases_sync(
        source="transactions",
        stream_arn=arn,
        shards=[
            {"ShardId": "s-parent"},
            {"ShardId": "s-child-1", "ParentShardId": "s-parent"},
            {"ShardId": "s-child-2", "ParentShardId": "s-parent"},
            {"ShardId": "s-orphan", "ParentShardId": "s-trimmed"},  # its parent is gone
        ],
    )
    one, two = (StreamProcessor(TRANSACTIONS, owner=o) for o in ("one", "two"))
    one.stream_arn = two.stream_arn = arn

    assert one.take() == ["s-orphan", "s-parent"]  # its share: all it may read now
    assert two.take() == []  # the children wait for the parent

    ShardLease.objects.filter(shard_id="s-parent").update(finished_at=timezone.now(), owner="")
    one.held = {pk: h for pk, h in one.held.items() if h.shard_id != "s-parent"}
    assert two.take() == ["s-child-1", "s-child-2"]
    children = ShardLease.objects.filter(shard_id__startswith="s-child")
    assert {lease.owner for lease in children} == {"two"}


@pytest.fixture
def own_table():
    """A transactions table of its own (its stream can be turned off without harm)."""
    with override_settings(DYNAMODB_TABLE_PREFIX=f"tstr{timezone.now():%H%M%S%f}_"):
        tables.ensure_all()
        yield
        tables.delete_all()


def test_a_closed_shard_is_read_to_its_end_then_finished(own_table):
    branch, loan = branch_with_loan()
    pay(loan, "10.00", day=open_day(branch))
    boto3_client().update_table(
        TableName=TransactionItem.Meta.table_name, StreamSpecification={"StreamEnabled": False}
    )

    processor = StreamProcessor(TRANSACTIONS, owner="p")
    assert processor.run(until_idle=True) == 1

    lease = ShardLease.objects.get()
    assert lease.finished_at is not None and lease.owner == "" and lease.records_applied == 1
    assert Dcr.objects.get(branch=branch).collected_amount == D("10.00")


# --- Lag -------------------------------------------------------------------------------------


def test_the_lag_grows_while_no_processor_reads(at_tip):
    ShardLease.objects.update(polled_at=timezone.now() - timezone.timedelta(minutes=5))

    assert stream_lag_seconds()["transactions"] >= 300
    families = {f.name: f for f in StreamLagCollector().collect()}
    sample = families["backoffice_stream_lag_seconds"].samples[0]
    assert sample.labels == {"source": "transactions"} and sample.value >= 300

    process()
    assert stream_lag_seconds()["transactions"] < 300


# --- The command ------------------------------------------------------------------------------


def test_the_command_applies_what_waits_and_stops_when_idle(at_tip, capsys):
    branch, loan = branch_with_loan()
    pay(loan, "10.00", day=open_day(branch))

    call_command("streams_process", "--until-idle")

    assert "stream transactions: 1 record(s) applied, stopped" in capsys.readouterr().out
    assert Dcr.objects.get(branch=branch).collected_amount == D("10.00")
    assert ShardLease.objects.get().owner == ""


def test_the_command_refuses_a_batch_size_dynamodb_does_not_take():
    with pytest.raises(CommandError, match="--batch-size: between 1 and 1000"):
        call_command("streams_process", "--batch-size", "5000")
