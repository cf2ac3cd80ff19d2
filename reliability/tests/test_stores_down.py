"""A store stopped in the middle of the work, on the suite's own services.

DynamoDB Local stopped during a burst of API ingestion, PostgreSQL stopped while the
posting queue drains. Nothing is lost, nothing counts twice, and each scenario ends with
the payments integrity check reporting no difference. Each prints its figures.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from decimal import Decimal

import pytest
import redis
from django.core.cache import cache
from django.db import close_old_connections, connection
from django.test import Client

from core.money import to_paise
from notifications.ddb_models import NotificationItem
from payments.ddb_models import DedupItem, QueueItem, TransactionItem
from payments.models import Posting
from payments.services import payment_ingest
from reliability.payments import (
    ApiPayment,
    Sweeper,
    assert_integrity,
    drain_posting_queue,
    integration,
    payments_for,
)
from reliability.services import FaultInstanceError, FaultServices, figures
from tests.factories import UserFactory, payment, templates_seed

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 4.0


@pytest.fixture
def stores() -> FaultServices:
    try:
        return FaultServices()
    except FaultInstanceError as exc:
        pytest.fail(str(exc), pytrace=False)


# --- DynamoDB stopped during a burst of ingestion ---------------------------------------


def _burst(requests, api_key, *, clients, stop_after, late_from, outage):
    """Send ``requests`` from ``clients`` threads. The ``outage`` context begins once
    ``stop_after`` answers are in, while the rest are in flight; requests from
    ``late_from`` on wait until it has begun. It ends when every request was answered.
    Returns the first answer to each request, and the measured outage."""
    answers: list[ApiPayment | None] = [None] * len(requests)
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(requests)):
        todo.put(index)
    lock, answered = threading.Lock(), [0]
    enough, stopped = threading.Event(), threading.Event()

    def client_thread():
        client = Client()
        try:
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                if index >= late_from:
                    stopped.wait(120)
                answers[index] = requests[index].send(client, api_key)
                with lock:
                    answered[0] += 1
                    if answered[0] >= stop_after:
                        enough.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=client_thread) for _ in range(clients)]
    for thread in threads:
        thread.start()
    assert enough.wait(120), "the burst did not start"
    with outage as measured:
        stopped.set()
        for thread in threads:
            thread.join(120)
    return answers, measured


def test_dynamodb_stopped_during_an_ingestion_burst_stores_each_payment_once(stores):
    loans, api_key = integration(loans=3)
    total, late_from = 60, 40
    requests = payments_for(loans, total, tag="burst")
    first, outage = _burst(
        requests,
        api_key,
        clients=4,
        stop_after=20,
        late_from=late_from,
        outage=stores.down("dynamodb"),
    )
    restarted = time.monotonic()

    # while it was down: a 503 with Retry-After, never a 500, never a 2xx for nothing
    assert all(answer is not None for answer in first)
    assert {a.status for a in first} <= {201, 503}, [(a.status, a.code) for a in first]
    unavailable = [a for a in first if a.status == 503]
    for answer in unavailable:
        assert answer.code == "store_unavailable" and answer.retry_after.isdigit()
    assert all(a.status == 503 for a in first[late_from:])
    accepted = [a for a in first if a.status == 201]
    for answer, request in zip(first, requests, strict=True):
        if answer.status == 201:
            stored = TransactionItem.get(answer.txn_id, consistent_read=True)
            assert stored.amount_paise == to_paise(Decimal(request.body["amount"]))

    # after the restart the same requests with the same keys complete, each exactly once
    client = Client()
    deadline = time.monotonic() + 90
    refusals: dict[str, int] = {}
    second = [
        r.send_until_done(client, api_key, deadline=deadline, refusals=refusals) for r in requests
    ]
    recovered_after = time.monotonic() - restarted
    assert [a.status for a in second] == [201] * total, [(a.status, a.code) for a in second]
    for before, after in zip(first, second, strict=True):
        if before.status == 201:
            assert after.txn_id == before.txn_id and after.replayed
    txn_ids = {a.txn_id for a in second}
    assert len(txn_ids) == total
    assert TransactionItem.count() == total and QueueItem.count() == total
    assert {d.state for d in DedupItem.scan()} == {"DONE"}

    outcomes = drain_posting_queue()
    assert Posting.objects.count() == total
    assert set(Posting.objects.values_list("txn_id", flat=True)) == txn_ids
    assert {t.status for t in TransactionItem.scan()} == {"POSTED"}
    summary = assert_integrity(total)
    figures(
        "dynamodb stopped during ingestion",
        requests=total,
        clients=4,
        accepted_before_stop=len(accepted),
        answered_503=len(unavailable),
        other_errors=total - len(accepted) - len(unavailable),
        dynamodb_down_s=round(outage.down_for, 1),
        dynamodb_ready_after_s=round(outage.ready_after, 1),
        refused_after_restart=refusals,
        all_completed_after_restart_s=round(recovered_after, 1),
        transactions=TransactionItem.count(),
        postings=Posting.objects.count(),
        posting_outcomes=outcomes,
        integrity=summary,
    )


# --- PostgreSQL stopped while the posting queue drains ----------------------------------


def _loan_ledger_balances(loan) -> bool:
    """What a loan's instalments received plus any excess equals what was posted to it."""
    loan.refresh_from_db()
    paid = sum(i.charges_paid + i.interest_paid + i.principal_paid for i in loan.instalments.all())
    postings = list(Posting.objects.filter(loan=loan))
    return paid + sum(p.excess for p in postings) == sum(p.amount for p in postings)


def test_postgres_stopped_while_the_queue_drains_backs_off_and_posts_each_once(stores, settings):
    settings.PAYMENTS_POSTING_BACKOFF_SECONDS = 1
    templates_seed()  # an earlier transactional test flushed the seeded receipt template
    loans, _ = integration(loans=4)
    principal = UserFactory(is_superuser=True)
    total = 40
    txn_ids = {
        payment_ingest(
            payment=payment(loans[i % 4], amount=f"{200 + i}.00", receipt_number=f"Q-{i}"),
            idempotency_key=f"drain-{uuid.uuid4()}",
            principal=principal,
            source="reliability",
        ).body["txn_id"]
        for i in range(total)
    }
    sweeper = Sweeper(batch=4)
    sweeper.start()
    try:
        assert sweeper.wait_for("posted", 8, timeout=60), sweeper.outcomes
        with stores.down("postgres") as outage:
            posted_before = sweeper.outcomes.get("posted", 0)
            assert sweeper.wait_for("retry", 8, timeout=30), sweeper.outcomes
            time.sleep(max(0.0, OUTAGE_SECONDS - outage.down_for))  # a few rounds of backoff
            # the items it could not post wait in DynamoDB, with their attempts and backoff
            items = list(QueueItem.scan(consistent_read=True))
            waiting = [i for i in items if i.queue_status == "POSTING#READY" and i.last_error]
            assert len(items) == total
            assert waiting, [(i.queue_status, i.last_error) for i in items]
            for item in waiting:
                assert "ledger database" in item.last_error
                assert item.attempts >= 1 and item.next_attempt_at > item.updated_at
            assert not [i for i in items if i.queue_status == "POSTING#DEAD"]
            backed_off = len(waiting)
            most_attempts = max(int(i.attempts) for i in items)
        restarted = time.monotonic()
        deadline = restarted + 90
        while sum(t.status == "POSTED" for t in TransactionItem.scan()) < total:
            assert time.monotonic() < deadline, sweeper.outcomes
            time.sleep(0.5)
        recovered_after = time.monotonic() - restarted
    finally:
        sweeper.finish.set()
        sweeper.join(30)
    assert not sweeper.crashes, sweeper.crashes
    # the test's own connection was cut by the restart, as every other one
    close_old_connections()
    assert Posting.objects.count() == total
    assert set(Posting.objects.values_list("txn_id", flat=True)) == txn_ids
    assert {i.queue_status for i in QueueItem.scan()} == {"POSTING#DONE"}
    assert all(_loan_ledger_balances(loan) for loan in loans)
    receipts = [
        n for n in NotificationItem.scan() if n.template_code == "receipt" and n.status != "PENDING"
    ]
    # one receipt a payment; one whose commit's answer was lost with the server is not sent
    assert receipts and len({n.entity for n in receipts}) == len(receipts), len(receipts)
    summary = assert_integrity(total)
    figures(
        "postgres stopped while the posting queue drains",
        payments=total,
        posted_before_stop=posted_before,
        backed_off_items=backed_off,
        most_attempts=most_attempts,
        postgres_down_s=round(outage.down_for, 1),
        postgres_ready_after_s=round(outage.ready_after, 1),
        all_posted_after_restart_s=round(recovered_after, 1),
        sweep_outcomes=sweeper.outcomes,
        receipts_released=len(receipts),
        postings=Posting.objects.count(),
        integrity=summary,
    )


# --- Redis restarted --------------------------------------------------------------------


def _pay(client: Client, api_key: str, loan, name: str) -> str:
    answer = ApiPayment(
        f"redis-{name}-{uuid.uuid4()}",
        {"loan_account": loan.loan_number, "amount": "500.00", "mode": "UPI"},
    ).send(client, api_key)
    assert answer.status == 201, (name, answer.status, answer.code)
    return answer.txn_id


def _posted(*txn_ids: str) -> bool:
    return all(TransactionItem.get(t, consistent_read=True).status == "POSTED" for t in txn_ids)


def test_redis_restarted_the_system_recovers_by_itself(stores, celery_workers, wait_until, caplog):
    (loan,), api_key = integration(loans=1)
    client = Client()
    # the production topology: a worker and beat, never restarted by hand
    worker = celery_workers.start()
    beat = celery_workers.start_beat()
    before = _pay(client, api_key, loan, "before")
    wait_until(lambda: _posted(before), timeout=30, what="the first payment posted")
    assert client.get("/health/ready").status_code == 200

    with stores.down("redis") as outage:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["down"] == ["redis"]
        with pytest.raises(redis.ConnectionError):
            cache.get("reliability:probe")
        # a payment is still accepted (DynamoDB holds it); its posting task cannot be sent
        began = time.monotonic()
        during = _pay(client, api_key, loan, "during")
        accept_while_down_s = time.monotonic() - began
        # published off the request, by the process's publisher, which logs the refusal
        wait_until(
            lambda: f"could not enqueue posting of {during}" in caplog.text,
            timeout=15,
            what="the publisher's warning",
        )
        time.sleep(max(0.0, OUTAGE_SECONDS - outage.down_for))
    restarted = time.monotonic()

    ready_after = wait_until(
        lambda: client.get("/health/ready").status_code == 200 and time.monotonic(),
        timeout=30,
        what="/health/ready answering 200 again",
    )
    # the web side's cache and task sending work again, without reconnecting by hand
    cache.set("reliability:probe", "back")
    assert cache.get("reliability:probe") == "back"
    caplog.clear()
    after = _pay(client, api_key, loan, "after")
    assert "could not enqueue" not in caplog.text
    # the worker consumes what is sent after the restart: the task of the new payment, and
    # beat's sweep, which alone can post the payment whose task was never sent
    posted_at = wait_until(
        lambda: _posted(during, after) and time.monotonic(),
        timeout=60,
        what="the payments accepted during and after the outage posted",
    )
    assert worker.alive and beat.alive, celery_workers.log_text()
    assert Posting.objects.count() == 3
    summary = assert_integrity(3)
    figures(
        "redis restarted",
        redis_down_s=round(outage.down_for, 1),
        redis_ready_after_s=round(outage.ready_after, 1),
        health_ready_200_after_s=round(ready_after - restarted, 1),
        accepted_while_down_in_s=round(accept_while_down_s, 2),
        all_posted_after_restart_s=round(posted_at - restarted, 1),
        postings=Posting.objects.count(),
        integrity=summary,
    )
