"""Posting's CPU per payment in this process: one at a time (``payment_post_one``, the task
that ingestion sends for each payment) against batches (``payments_post_these``, the task
for the payments a web process accepted together), alternated round by round in the same
window, and the CPU of each piece.

Run it from the project folder on the development stores with payments waiting to be
posted (``bench/ingest.py`` leaves its payments READY; delete the Celery list ``celery``
in your Redis database after it, so that no worker posts them first):

    .venv/bin/python bench/ingest.py --payments 1000 --clients 4 --port 8221
    .venv/bin/python bench/posting.py [--per-round 40] [--rounds 3] [--batch 20 --batch 5]

Each round posts ``--per-round`` READY payments one at a time, then the same number in
batches of each ``--batch`` size, and prints the median CPU (``time.process_time``) per
payment over the rounds, with the pieces, each counting its own thread's CPU: the lease
(a conditional UpdateItem each, in parallel threads for a batch), the ledger's PostgreSQL
transaction, the receipt's rendering, the mark (TransactWriteItems), and the Celery
publishes (the receipt's send task, the outbox relay's kick). CPU only: the wall time here is mostly
DynamoDB Local, whose writes to a table with a stream (``transactions``) take it tens of
milliseconds of its own CPU each. Production settings (``DJANGO_DEBUG=0``).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
from bench.servers import SERVER_ENV  # noqa: E402

os.environ.update(SERVER_ENV)

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402

import core.outbox  # noqa: E402
from bench.figures import machine  # noqa: E402
from core.clock import iso  # noqa: E402
from payments.ddb_models import QueueItem, queue_query  # noqa: E402
from payments.services import posting  # noqa: E402

PIECES = [
    (posting, "_lease", "lease (UpdateItem)"),
    (posting, "ledger_post_many", "ledger (PostgreSQL)"),
    (posting, "_receipt", "receipt rendered"),
    (posting, "transact_write", "mark (TransactWriteItems)"),
    (posting, "notification_send_enqueue", "receipt's send task"),
    (core.outbox, "_enqueue_relay", "outbox relay's kick"),
]
spent: dict[str, float] = defaultdict(float)


def measured(module, name: str, label: str) -> None:
    """Replace ``module.name`` by the same function adding its CPU to ``spent[label]``."""
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        began = time.thread_time()  # the calling thread's: leases run in parallel threads
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - began

    setattr(module, name, wrapper)


def ready_ids(count: int) -> list[str]:
    due = QueueItem.next_attempt_at <= iso(timezone.now())
    return [item.item_id for item in queue_query("READY", due, limit=count)][:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, action="append")
    args = parser.parse_args()
    sizes = args.batch or [20, 5]
    ways = [("one at a time", None)] + [(f"batches of {size}", size) for size in sizes]
    needed = 8 + args.per_round * args.rounds * len(ways)
    ids = ready_ids(needed)
    if len(ids) < needed:
        raise SystemExit(f"error: {needed} READY payments needed, {len(ids)} waiting")
    for module, name, label in PIECES:
        measured(module, name, label)
    for txn_id in ids[:4]:  # warm: connections, caches, templates
        posting.payment_post_one(txn_id=txn_id)
    posting.payments_post_these(txn_ids=ids[4:8])
    ids = ids[8:]
    cpu: dict[str, list[float]] = defaultdict(list)
    pieces: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _ in range(args.rounds):
        for way, size in ways:
            take, ids = ids[: args.per_round], ids[args.per_round :]
            spent.clear()
            began = time.process_time()
            if size is None:
                results = [{posting.payment_post_one(txn_id=txn_id): 1} for txn_id in take]
            else:
                results = [
                    posting.payments_post_these(txn_ids=take[i : i + size])
                    for i in range(0, len(take), size)
                ]
            cpu[way].append((time.process_time() - began) * 1000 / len(take))
            for label, seconds in spent.items():
                pieces[way][label] += seconds * 1000 / len(take) / args.rounds
            for result in results:
                for outcome, count in result.items():
                    outcomes[way][outcome] += count
    print(f"posting, {args.per_round} payments a round, {args.rounds} rounds; {machine()}")
    for way, _ in ways:
        rounds = ", ".join(f"{value:.2f}" for value in cpu[way])
        print(
            f"  {way:16s} {statistics.median(cpu[way]):6.2f} ms CPU a payment "
            f"(rounds {rounds}; {dict(outcomes[way])})"
        )
        for label, value in sorted(pieces[way].items(), key=lambda kv: -kv[1]):
            print(f"      {label:28s} {value:6.2f} ms")


if __name__ == "__main__":
    main()
