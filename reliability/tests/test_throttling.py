"""DynamoDB throttling and transaction conflicts, which DynamoDB Local never raises itself,
injected (``dynamo.tests.faults.inject``: the answer AWS gives once its own retries are spent)
while payments are ingested through the API and while the posting queue drains.

Each is retried with backoff: a cancelled transaction by the application, a refused
request by the client after the 503's Retry-After, a throttled sweep by the next sweep.
Nothing is lost, nothing is stored or posted twice, and the integrity check agrees.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest
from django.db import connection
from django.test import Client

from dynamo.tests.faults import inject
from payments.ddb_models import DedupItem, QueueItem, TransactionItem
from payments.models import Posting
from reliability.payments import Sweeper, assert_integrity, integration, payments_for
from reliability.services import figures

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# (operation, fault, how many times): more conflicts in a row than a transaction is
# retried, so that some requests end in a 503 and come back. Ingestion's one call is the
# TransactWriteItems (it reads the key only when that is cancelled by a condition, which
# a first request never is): no GetItem or PutItem to throttle.
INGESTION_FAULTS = [
    ("TransactWriteItems", "conflict", 24),
    ("TransactWriteItems", "throttling", 4),
]
# the sweep's claims (Query, UpdateItem) throttled, its final writes in conflict
POSTING_FAULTS = [
    ("Query", "throttling", 2),
    ("UpdateItem", "throttling", 3),
    ("TransactWriteItems", "conflict", 5),
]


def _injected(stack: ExitStack, faults) -> list:
    return [stack.enter_context(inject(op, fault, times)) for op, fault, times in faults]


def test_throttling_and_conflicts_lose_nothing_and_count_nothing_twice():
    loans, api_key = integration(loans=3)
    total, clients = 40, 4
    requests = payments_for(loans, total, tag="throttled")
    answers: list = [None] * total
    refusals: dict[str, int] = {}

    def client_thread(indexes):
        client = Client()
        try:
            for index in indexes:
                seen: dict[str, int] = {}
                answers[index] = requests[index].send_until_done(
                    client, api_key, deadline=time.monotonic() + 90, refusals=seen
                )
                for code, count in seen.items():
                    refusals[code] = refusals.get(code, 0) + count
        finally:
            connection.close()

    began = time.monotonic()
    with ExitStack() as stack:
        injected = _injected(stack, INGESTION_FAULTS)
        threads = [
            threading.Thread(target=client_thread, args=(range(c, total, clients),))
            for c in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
    ingest_s = time.monotonic() - began
    assert [i.remaining for i in injected] == [0] * len(injected), "a fault was never met"
    statuses_seen = {a.status for a in answers}
    assert statuses_seen == {201}, [(a.status, a.code) for a in answers]
    assert set(refusals) <= {"store_unavailable", "request_in_flight"}, refusals
    assert refusals.get("store_unavailable"), "no request was refused: the faults were absorbed"
    txn_ids = {a.txn_id for a in answers}
    assert len(txn_ids) == total
    assert TransactionItem.count() == total and QueueItem.count() == total
    assert {d.state for d in DedupItem.scan()} == {"DONE"}

    # posting, by two sweeps at once (two workers): a throttled claim ends a sweep's
    # claiming (what it leased it posts), a throttled query ends the run, and the next run
    # (beat sends one every 5 s) goes on; conflicts of the final write are retried
    began = time.monotonic()
    sweepers = [Sweeper(batch=5) for _ in range(2)]
    for sweeper in sweepers:
        sweeper.start()
    with ExitStack() as stack:
        try:
            # the faults begin while the sweeps are at work, wherever each one is
            assert sweepers[0].wait_for("posted", 1, timeout=30), sweepers[0].outcomes
            injected = _injected(stack, POSTING_FAULTS)
            while sum(t.status == "POSTED" for t in TransactionItem.scan()) < total:
                assert time.monotonic() - began < 120, [s.outcomes for s in sweepers]
                time.sleep(0.2)
        finally:
            for sweeper in sweepers:
                sweeper.finish.set()
                sweeper.join(30)
    post_s = time.monotonic() - began
    assert [i.remaining for i in injected] == [0] * len(injected), "a fault was never met"
    assert Posting.objects.count() == total
    assert set(Posting.objects.values_list("txn_id", flat=True)) == txn_ids
    items = list(QueueItem.scan())
    assert {i.queue_status for i in items} == {"POSTING#DONE"}
    # each was posted by the run that leased it: none waited for a lease to run out
    assert {int(i.attempts) for i in items} == {1}, (
        [(i.item_id, int(i.attempts), i.last_error) for i in items if i.attempts != 1],
        [(s.outcomes, s.crashes) for s in sweepers],
    )
    outcomes = Sweeper.total(sweepers, "outcomes")
    failed_runs = Sweeper.total(sweepers, "crashes")
    summary = assert_integrity(total)
    figures(
        "dynamodb throttling and transaction conflicts",
        payments=total,
        clients=clients,
        ingestion_faults={f"{op} {fault}": n for op, fault, n in INGESTION_FAULTS},
        client_refusals=refusals,
        ingested_in_s=round(ingest_s, 1),
        posting_faults={f"{op} {fault}": n for op, fault, n in POSTING_FAULTS},
        sweep_runs=Sweeper.total(sweepers, "runs"),
        failed_runs=failed_runs,
        sweep_outcomes=outcomes,
        posted_in_s=round(post_s, 1),
        postings=Posting.objects.count(),
        integrity=summary,
    )
