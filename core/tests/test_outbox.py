"""core.outbox: one table, handlers by topic, one relay. On the real Postgres: what a caller
writes commits or rolls back with it, a lost kick is delivered by the beat's relay, a
failure is retried with backoff, two relays at once never deliver one message twice, done
messages are purged; and the migrations that moved the four older mechanisms into it."""

import datetime as dt
import threading
import time
from decimal import Decimal
from functools import partial

import pytest
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import OuterRef
from django.utils import timezone

from config.celery import app
from core import outbox
from core.models import OutboxMessage
from core.outbox import (
    INLINE_GRACE,
    MAX_BACKOFF,
    backoff,
    outbox_add,
    outbox_add_many,
    outbox_backlog,
    outbox_deliver,
    outbox_pending_exists,
    outbox_pending_keys,
    outbox_purge,
    outbox_relay,
)
from core.tasks import outbox_purge_task, outbox_relay_task
from mandates.models import ExecutionResult, ScheduledPresentation
from payments.models import Posting
from tests.concurrency import in_threads, relay_all
from tests.factories import (
    UserFactory,
    active_mandate,
    actors,
    branch_with_loan,
    days_ago,
    make_loan,
)

TOPIC = "test.echo"
INLINE = "test.inline"
BATCH = "test.batch"


class Recorder:
    """A topic's handler that records what it delivered, and fails while told to."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.seen: list[OutboxMessage] = []
        self.failing: set[str] = set()

    def __call__(self, message: OutboxMessage) -> None:
        if message.key in self.failing:
            raise RuntimeError(f"the store refused {message.key}")
        self.seen.append(message)
        self.delivered.append(message.key)

    def batch(self, messages: list[OutboxMessage]) -> dict[int, str]:
        failed = {m.pk: "refused" for m in messages if m.key in self.failing}
        self.delivered += [m.key for m in messages if m.pk not in failed]
        return failed


@pytest.fixture
def echo(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setitem(outbox._topics, TOPIC, outbox.Topic(TOPIC, recorder))
    return recorder


@pytest.fixture
def inline(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setitem(outbox._topics, INLINE, outbox.Topic(INLINE, recorder, inline=True))
    return recorder


@pytest.fixture
def batch(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setitem(outbox._topics, BATCH, outbox.Topic(BATCH, recorder.batch, batch=True))
    return recorder


def pending(topic: str = TOPIC):
    return OutboxMessage.objects.filter(topic=topic, done_at__isnull=True)


def later(**delta) -> dt.datetime:
    return timezone.now() + dt.timedelta(**delta)


# --- Writing ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_is_written_with_its_topic_key_ref_and_payload(echo):
    message = outbox_add(TOPIC, "k-1", {"amount": Decimal("10.50"), "n": 1}, ref="loans#1")
    stored = OutboxMessage.objects.get(pk=message.pk)
    assert (stored.topic, stored.key, stored.ref) == (TOPIC, "k-1", "loans#1")
    assert stored.payload == {"amount": "10.50", "n": 1}  # a Decimal as text, never a float
    assert stored.attempts == 0 and stored.last_error == "" and stored.done_at is None
    assert stored.created_at == message.created_at and stored.available_at <= timezone.now()


@pytest.mark.django_db
def test_adding_the_same_key_twice_is_a_no_op(echo, monkeypatch):
    first = outbox_add(TOPIC, "k-1", {"v": 1})
    assert outbox_add(TOPIC, "k-1", {"v": 2}) is None
    assert list(OutboxMessage.objects.filter(topic=TOPIC).values_list("pk", "payload")) == [
        (first.pk, {"v": 1})
    ]
    monkeypatch.setitem(outbox._topics, "test.other", outbox.Topic("test.other", echo))
    assert outbox_add("test.other", "k-1") is not None  # a key is unique per topic only
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxMessage.objects.create(topic=TOPIC, key="k-1")  # the database says so too


@pytest.mark.django_db
def test_many_messages_are_copied_at_once_with_one_kick_and_are_relayed(
    echo, inline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        added = outbox_add_many(
            TOPIC,
            [(f"k-{n}", {"amount": Decimal("10.50"), "n": n}, f"loans#{n}") for n in range(3)],
        )
    assert added == 3 and callbacks == [outbox._enqueue_relay]
    stored = list(pending().order_by("key").values_list("key", "ref", "payload", "last_error"))
    assert stored == [(f"k-{n}", f"loans#{n}", {"amount": "10.50", "n": n}, "") for n in range(3)]
    assert outbox_relay(topics=[TOPIC])[TOPIC] == 3
    assert sorted(echo.delivered) == ["k-0", "k-1", "k-2"]
    with pytest.raises(IntegrityError), transaction.atomic():
        outbox_add_many(TOPIC, [("k-0", {}, "")])  # keys must be new: nothing written
    with pytest.raises(ValueError, match="inline"):
        outbox_add_many(INLINE, [("k-9", {}, "")])


@pytest.mark.django_db
def test_a_topic_without_a_handler_is_refused():
    with pytest.raises(ValueError, match="no outbox handler"):
        outbox_add("test.nobody", "k-1")


@pytest.mark.django_db
def test_available_at_holds_a_message_back(echo):
    outbox_add(TOPIC, "k-1", available_at=later(minutes=5))
    assert outbox_relay(topics=[TOPIC])[TOPIC] == 0
    assert outbox_relay(topics=[TOPIC], now=later(minutes=6))[TOPIC] == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_caller_writes_nothing_and_delivers_nothing(echo, inline):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_add(TOPIC, "k-1")
        outbox_add(INLINE, "k-2")
        raise RuntimeError("the change failed")
    assert not OutboxMessage.objects.filter(topic__in=[TOPIC, INLINE]).exists()
    assert outbox_relay(topics=[TOPIC, INLINE], now=later(hours=1)) == {}
    assert echo.delivered == inline.delivered == []


# --- The kick after commit -------------------------------------------------------------


@pytest.mark.django_db
def test_a_commit_enqueues_one_relay_task_however_many_messages(
    echo, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for n in range(3):
            outbox_add(TOPIC, f"k-{n}")
    assert callbacks == [outbox._enqueue_relay]


@pytest.mark.django_db
def test_an_inline_message_is_delivered_by_the_committing_process(
    inline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        written = outbox_add(INLINE, "k-1", {"v": 1})
        written.local_state = "kept"  # what the caller leaves on it reaches the handler
        assert inline.delivered == []  # nothing before the commit
    assert inline.delivered == ["k-1"]
    assert inline.seen[0] is written and inline.seen[0].local_state == "kept"
    assert not pending(INLINE).exists()


@pytest.mark.django_db
def test_a_lost_inline_step_is_left_to_the_relay_for_its_grace(
    inline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outbox_add(INLINE, "k-1")
    assert len(callbacks) == 1  # the process died before running it
    assert outbox_relay(topics=[INLINE])[INLINE] == 0  # its own process may still do it
    assert outbox_relay(topics=[INLINE], now=later(seconds=INLINE_GRACE.seconds + 1))[INLINE] == 1
    callbacks[0]()  # a late after-commit step finds it done
    assert inline.delivered == ["k-1"]


@pytest.mark.django_db
def test_switched_off_the_commit_kicks_nothing(echo, settings, django_capture_on_commit_callbacks):
    settings.OUTBOX_DELIVER_ON_COMMIT = False
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outbox_add(TOPIC, "k-1")
    assert callbacks == [] and pending().count() == 1


def test_the_relay_and_the_purge_are_on_beats_schedule():
    (relay,) = [e for e in app.conf.beat_schedule.values() if e["task"] == outbox_relay_task.name]
    assert relay["schedule"] <= 10.0
    (purge,) = [e for e in app.conf.beat_schedule.values() if e["task"] == outbox_purge_task.name]
    assert isinstance(purge["schedule"], crontab)
    assert len(purge["schedule"].hour) == len(purge["schedule"].minute) == 1  # once a day


@pytest.mark.django_db(transaction=True)
def test_a_lost_kick_is_delivered_by_the_beats_relay_task(echo):
    with transaction.atomic():
        outbox_add(TOPIC, "k-1")
        connection.run_on_commit = []  # the process died right after its commit
    assert pending().count() == 1
    app.control.purge()
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        outbox_relay_task.delay()  # the beat's run
        deadline = time.monotonic() + 20
        while pending().exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert echo.delivered == ["k-1"]
    assert OutboxMessage.objects.get(topic=TOPIC).done_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_commits_kick_has_it_delivered_through_the_worker(echo):
    app.control.purge()
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        with transaction.atomic():
            outbox_add(TOPIC, "k-1")
        deadline = time.monotonic() + 20
        while pending().exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert echo.delivered == ["k-1"]


# --- Delivering ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_relay_delivers_due_messages_oldest_first_within_its_limit(echo):
    for n in range(5):
        outbox_add(TOPIC, f"k-{n}")
    assert outbox_relay(topics=[TOPIC], limit=2) == {TOPIC: 2}
    assert echo.delivered == ["k-0", "k-1"]
    assert outbox_relay(topics=[TOPIC])[TOPIC] == 3
    assert outbox_relay(topics=[TOPIC])[TOPIC] == 0  # run again: nothing left, nothing twice
    assert echo.delivered == [f"k-{n}" for n in range(5)]
    assert not pending().exists()


@pytest.mark.django_db
def test_a_failed_delivery_counts_keeps_the_error_and_backs_off(echo, settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 5
    outbox_add(TOPIC, "ok")
    outbox_add(TOPIC, "bad")
    echo.failing.add("bad")
    assert outbox_relay(topics=[TOPIC])[TOPIC] == 1
    bad = OutboxMessage.objects.get(topic=TOPIC, key="bad")
    assert bad.done_at is None and bad.attempts == 1
    assert bad.last_error == "RuntimeError: the store refused bad"
    assert later(seconds=4) < bad.available_at <= later(seconds=5)

    assert outbox_relay(topics=[TOPIC])[TOPIC] == 0  # not before its backoff
    assert outbox_relay(topics=[TOPIC], now=later(seconds=6))[TOPIC] == 0  # fails again
    bad.refresh_from_db()
    assert bad.attempts == 2 and later(seconds=9) < bad.available_at <= later(seconds=10)

    echo.failing.clear()  # the store is back
    assert outbox_relay(topics=[TOPIC], now=later(seconds=11))[TOPIC] == 1
    bad.refresh_from_db()
    assert bad.done_at is not None and bad.attempts == 2  # the error stays for the record
    assert echo.delivered == ["ok", "bad"]


def test_backoff_doubles_up_to_its_cap(settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 5
    assert [backoff(n).seconds for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff(30) == MAX_BACKOFF == dt.timedelta(minutes=15)


@pytest.mark.django_db
def test_a_failed_handler_leaves_no_postgres_write_behind(monkeypatch):
    def writes_then_fails(message):
        UserFactory(username=f"written-by-{message.key}")
        raise RuntimeError("DynamoDB said no")

    monkeypatch.setitem(outbox._topics, TOPIC, outbox.Topic(TOPIC, writes_then_fails))
    outbox_add(TOPIC, "k-1")
    assert outbox_relay(topics=[TOPIC])[TOPIC] == 0
    assert not get_user_model().objects.filter(username="written-by-k-1").exists()
    assert pending().get().attempts == 1


@pytest.mark.django_db
def test_a_batch_handler_gets_its_topics_messages_together_and_fails_them_one_by_one(batch, echo):
    for n in range(3):
        outbox_add(BATCH, f"b-{n}")
    outbox_add(TOPIC, "e-0")
    batch.failing.add("b-1")
    assert outbox_relay(topics=[BATCH, TOPIC]) == {BATCH: 2, TOPIC: 1}
    assert batch.delivered == ["b-0", "b-2"] and echo.delivered == ["e-0"]
    (failed,) = pending(BATCH)
    assert (failed.key, failed.attempts, failed.last_error) == ("b-1", 1, "refused")


@pytest.mark.django_db
def test_a_message_of_a_topic_nobody_handles_waits_with_its_error():
    OutboxMessage.objects.create(topic="test.gone", key="k-1")  # e.g. an app removed
    assert outbox_relay(topics=["test.gone"]) == {"test.gone": 0}
    message = OutboxMessage.objects.get(topic="test.gone")
    assert message.done_at is None and message.last_error == "no handler registered"


@pytest.mark.django_db
def test_deliver_now_does_one_message_and_raises_when_asked(echo):
    outbox_add(TOPIC, "k-1", available_at=later(hours=1))  # not due: delivered anyway
    echo.failing.add("k-1")
    assert outbox_deliver(TOPIC, "k-1") is False
    with pytest.raises(RuntimeError, match="refused k-1"):
        outbox_deliver(TOPIC, "k-1", raise_errors=True)
    assert pending().get().attempts == 2
    echo.failing.clear()
    assert outbox_deliver(TOPIC, "k-1") is True
    assert outbox_deliver(TOPIC, "k-1") is False  # done already
    assert outbox_deliver(TOPIC, "no-such-key") is False
    assert echo.delivered == ["k-1"]


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_never_deliver_one_message_twice(monkeypatch):
    keys = [f"k-{n:02d}" for n in range(60)]
    lock, in_flight, overlaps, delivered = threading.Lock(), set(), [], []

    def slow(message):
        with lock:
            if message.key in in_flight:
                overlaps.append(message.key)
            in_flight.add(message.key)
        time.sleep(0.02)  # a DynamoDB round trip, so that the relays truly overlap
        with lock:
            in_flight.discard(message.key)
            delivered.append(message.key)

    monkeypatch.setitem(outbox._topics, TOPIC, outbox.Topic(TOPIC, slow))
    with transaction.atomic():
        for key in keys:
            outbox_add(TOPIC, key)
        connection.run_on_commit = []  # no kick: the two relays do it all
    relay = partial(relay_all, TOPIC, limit=7)
    counts = in_threads(relay, relay, raise_errors=True)
    assert not overlaps
    assert sorted(delivered) == keys  # each once
    assert sum(counts) == 60 and all(counts), counts  # and the two shared the work
    assert not pending().exists()


# --- Purging and reading ---------------------------------------------------------------


@pytest.mark.django_db
def test_purge_deletes_long_done_messages_and_never_a_pending_one(echo, settings):
    settings.OUTBOX_RETENTION_DAYS = 30
    old, recent, waiting = (outbox_add(TOPIC, key) for key in ("old", "recent", "waiting"))
    outbox_relay(topics=[TOPIC], limit=2)
    long_ago = timezone.now() - dt.timedelta(days=400)
    OutboxMessage.objects.filter(pk=waiting.pk).update(created_at=long_ago)
    OutboxMessage.objects.filter(pk=old.pk).update(done_at=timezone.now() - dt.timedelta(days=31))
    OutboxMessage.objects.filter(pk=recent.pk).update(
        done_at=timezone.now() - dt.timedelta(days=29)
    )
    assert outbox_purge() == 1
    assert set(OutboxMessage.objects.filter(topic=TOPIC).values_list("key", flat=True)) == {
        "recent",
        "waiting",
    }
    assert outbox_purge(older_than_days=7) == 1  # the one done 29 days ago
    assert list(OutboxMessage.objects.filter(topic=TOPIC).values_list("key", flat=True)) == [
        "waiting"
    ]


@pytest.mark.django_db(transaction=True)
def test_purge_task_runs_through_an_embedded_worker(echo, settings):
    settings.OUTBOX_DELIVER_ON_COMMIT = False
    old = outbox_add(TOPIC, "old")
    outbox_relay(topics=[TOPIC])
    OutboxMessage.objects.filter(pk=old.pk).update(done_at=timezone.now() - dt.timedelta(days=31))
    waiting = outbox_add(TOPIC, "waiting")
    app.control.purge()
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        outbox_purge_task.delay()
        deadline = time.monotonic() + 20
        while OutboxMessage.objects.filter(pk=old.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert list(OutboxMessage.objects.filter(topic=TOPIC).values_list("pk", flat=True)) == [
        waiting.pk
    ]


@pytest.mark.django_db
def test_pending_keys_backlog_and_the_annotation_read_only_pending_messages(echo):
    OutboxMessage.objects.all().delete()
    outbox_add(TOPIC, "a")
    outbox_add(TOPIC, "b")
    outbox_deliver(TOPIC, "a")
    assert outbox_pending_keys(TOPIC, ["a", "b", "c"]) == {"b"}
    assert outbox_pending_keys(TOPIC, []) == set()
    count, oldest = outbox_backlog()[TOPIC]
    assert count == 1 and oldest == OutboxMessage.objects.get(key="b").created_at
    annotated = OutboxMessage.objects.filter(topic=TOPIC).annotate(
        again=outbox_pending_exists(TOPIC, OuterRef("key"))
    )
    assert dict(annotated.values_list("key", "again")) == {"a": False, "b": True}


def test_every_app_registers_its_topics():
    assert set(outbox.registered_topics()) >= {
        "audit",
        "notifications.release",
        "mandates.result",
        "payments.reversal",
    }
    assert outbox._topics["audit"].batch
    assert outbox._topics["notifications.release"].inline
    assert outbox._topics["mandates.result"].inline
    assert not outbox._topics["payments.reversal"].inline


# --- The migrations that moved the four mechanisms here --------------------------------

BEFORE = [
    ("audit", "0001_initial"),
    ("notifications", "0003_pending_release"),
    ("mandates", "0005_delete_mandatetransition"),
    ("payments", "0003_plural_name"),
]


@pytest.mark.django_db(transaction=True)
def test_the_migrations_move_what_waits_into_the_outbox():
    branch, _ = branch_with_loan()
    loan = make_loan(branch=branch, disbursed_on=days_ago(20), tenure_months=12)
    mandate = active_mandate(loan, actors(branch))
    results = [
        ExecutionResult.objects.create(
            execution_id=f"{row.pk}-1", presentation=row, status="SUCCESS"
        )
        for row in ScheduledPresentation.objects.filter(mandate=mandate).order_by("due_date")[:2]
    ]
    postings = [
        Posting.objects.create(
            txn_id=f"01TESTPOSTING000000000000{n}",
            loan=loan,
            branch=branch,
            business_date=days_ago(1),
            mode="CASH",
            amount=Decimal("10.00"),
        )
        for n in (1, 2)
    ]
    browser = UserFactory(username="browses-the-trail")
    then = timezone.now() - dt.timedelta(hours=2)
    OutboxMessage.objects.all().delete()

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        events = old.get_model("audit", "AuditOutbox").objects
        waiting = events.create(
            entity="loans.loanaccount#7",
            entity_repr="LN7",
            action="update",
            actor_id=browser.pk,
            actor_repr="browses-the-trail",
            request_id="req-1",
            ip="10.0.0.1",
            occurred_at=then,
            changes={"name": ["A", "B"]},
            remarks="renamed",
        )
        events.create(entity="loans.loanaccount#8", action="create", relayed_at=then)
        old.get_model("notifications", "PendingRelease").objects.create(
            notification_id="01TESTNOTIFICATION00000001",
            channel="SMS",
            due_at=then,
            created_at=then,
        )
        old.get_model("mandates", "ExecutionResult").objects.filter(pk=results[1].pk).update(
            dynamo_synced_at=None
        )
        old_postings = old.get_model("payments", "Posting").objects
        old_postings.filter(pk=postings[0].pk).update(reversed_at=then, reversal_synced_at=None)
        old_postings.filter(pk=postings[1].pk).update(reversed_at=then, reversal_synced_at=then)
        content_type, _ = ContentType.objects.get_or_create(app_label="audit", model="auditoutbox")
        old_permission, _ = Permission.objects.get_or_create(
            content_type=content_type, codename="view_auditoutbox", defaults={"name": "old"}
        )
        browser.user_permissions.through.objects.create(  # (no audit event of its own)
            user_id=browser.pk, permission_id=old_permission.pk
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    messages = {(m.topic, m.key): m for m in OutboxMessage.objects.all()}
    assert set(messages) == {
        ("audit", waiting.event_id),
        ("notifications.release", "01TESTNOTIFICATION00000001"),
        ("mandates.result", results[1].execution_id),
        ("payments.reversal", postings[0].txn_id),
    }
    assert all(m.done_at is None and m.attempts == 0 for m in messages.values())
    event = messages[("audit", waiting.event_id)]
    assert (event.ref, event.created_at) == ("loans.loanaccount#7", then)
    assert event.payload == {
        "action": "update",
        "entity_repr": "LN7",
        "actor_id": browser.pk,
        "actor_repr": "browses-the-trail",
        "request_id": "req-1",
        "ip": "10.0.0.1",
        "changes": {"name": ["A", "B"]},
        "remarks": "renamed",
    }
    release = messages[("notifications.release", "01TESTNOTIFICATION00000001")]
    assert release.payload["channel"] == "SMS"
    assert dt.datetime.fromisoformat(release.payload["due_at"]) == then
    assert release.available_at == then + INLINE_GRACE
    browser = get_user_model().objects.get(pk=browser.pk)
    assert browser.has_perm("audit.view_events")
