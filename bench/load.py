"""A sustained mixed load against real server processes: gunicorn and Celery workers.

Run it from the project folder (the local services must be running, the development
database loaded by ``bin/run`` or ``manage.py bootstrap``):

    .venv/bin/python bench/load.py [--seconds 180] [--clients 16] [--port 8100]
        [--web-workers 2] [--posting-workers 2xCPUs]

It starts its own gunicorn (production settings: ``DJANGO_DEBUG=0``, behind a pretend
TLS proxy via ``X-Forwarded-Proto``) and its own Celery workers as ``bin/run`` starts them
(the default queue, two processes a core or ``--posting-workers``; the background queue, 1), all
on the development stores, creates an API client with a new key and a session of the Operations user
``ops1``, and then, for ``--seconds``, ``--clients`` threads send this mix, each request
as soon as the previous one answered:

- 60% payment ingestion: ``POST /api/v1/transactions``, a new Idempotency-Key each,
  a small amount on one of the loans that have a schedule;
- 25% API reads: a loan (``GET /api/v1/loans/{number}``) or its transactions;
- 15% admin pages as ``ops1``: the loan changelist, a filtered page, a loan's change page.

Meanwhile it samples the posting queue's lag (the age of the oldest item still waiting to
be posted) every 2 seconds. When the load stops it waits for the queue to drain and
prints per kind of request: count, throughput, p50, p99, max and errors (any status other
than the expected one), the queue lag, the drain time, and finally
``payments_integrity`` over the day (DynamoDB against the ledger, loan by loan).

For comparison, in the same run: the raw DynamoDB write rate (a conditional ``PutItem``
of a transaction-sized item, the same number of threads, 10 seconds) and the API's
ingestion rate as a ratio of it (one ingestion is a key claim, a Postgres validation
and a three-item ``TransactWriteItems``: about a fifth of the raw rate is the ceiling).

A benchmark: it prints figures and fails only when the system does (errors, a queue that
does not drain, an integrity difference: exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

import django  # noqa: E402

django.setup()

import urllib3  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from api.services import api_client_create  # noqa: E402
from bench.servers import SERVER_ENV, logs_dir, start_gunicorn, stop  # noqa: E402
from core.clock import iso, parse_iso  # noqa: E402
from dynamo.connection import boto3_client  # noqa: E402
from loans.models import Instalment, LoanAccount  # noqa: E402
from payments.ddb_models import branch_day_key, queue_query  # noqa: E402
from payments.services import QueueStatus  # noqa: E402
from sessions_ddb.backend import SessionStore  # noqa: E402

MIX = (("ingest", 60), ("api_read", 25), ("admin", 15))
EXPECTED = {"ingest": {201}, "api_read": {200}, "admin": {200}}


def pick_loans(count: int) -> list[tuple[int, str]]:
    """Active loans with a schedule (their payments allocate to instalments)."""
    ids = list(Instalment.objects.values_list("loan_id", flat=True).distinct()[: count * 2])
    loans = LoanAccount.objects.filter(pk__in=ids, status=LoanAccount.Status.ACTIVE)
    return list(loans.values_list("pk", "loan_number")[:count])


def admin_session(username: str) -> str:
    """A logged-in session for ``username``, as the login view would write it."""
    user = User.objects.get(username=username)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key


def start_server(port: int, workers: int, posting_workers: int) -> list[subprocess.Popen]:
    env = dict(os.environ, **SERVER_ENV)
    logs = logs_dir()
    web = start_gunicorn(port, workers, 4, name="load")
    # The workers as bin/run starts them: money work, and notifications and audit apart.
    celery_workers = [
        subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                str(ROOT / ".venv" / "bin" / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                queue,
                f"--concurrency={concurrency}",
                "--loglevel=WARNING",
                f"--hostname=bench-load-{queue}-{uuid.uuid4().hex[:6]}@%h",
            ],
            env=env,
            stdout=open(logs / f"bench-load-worker-{queue}.log", "ab"),  # noqa: SIM115 - lives with the process
            stderr=subprocess.STDOUT,
        )
        for queue, concurrency in (
            (settings.CELERY_TASK_DEFAULT_QUEUE, posting_workers),
            (settings.BACKGROUND_QUEUE, 1),
        )
    ]
    return [web, *celery_workers]


class Load:
    def __init__(self, base: str, key: str, session: str, loans: list[tuple[int, str]]) -> None:
        self.base = base
        self.key = key
        self.session = session
        self.loans = loans
        self.http = urllib3.PoolManager(maxsize=64)
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.txn_ids: list[str] = []
        self.lock = threading.Lock()
        self.proxy = {"X-Forwarded-Proto": "https"}

    def request(self, kind: str, method: str, path: str, **kwargs) -> urllib3.BaseHTTPResponse:
        started = time.perf_counter()
        try:
            response = self.http.request(method, self.base + path, retries=False, **kwargs)
            status = response.status
        except urllib3.exceptions.HTTPError:
            response, status = None, 0
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.samples[kind].append(elapsed)
            if status not in EXPECTED[kind]:
                self.errors[kind][status] += 1
        return response

    def ingest(self, rng: random.Random) -> None:
        loan_number = rng.choice(self.loans)[1]
        body = {
            "loan_account": loan_number,
            "amount": f"{rng.randint(100, 500)}.00",
            "mode": rng.choice(["CASH", "UPI", "NEFT"]),
            "receipt_number": f"LOAD-{uuid.uuid4().hex[:12]}",
            "collector": f"Agent {rng.randint(1, 12)}",
        }
        response = self.request(
            "ingest",
            "POST",
            "/api/v1/transactions",
            body=json.dumps(body),
            headers={
                **self.proxy,
                "Authorization": f"Api-Key {self.key}",
                "Idempotency-Key": uuid.uuid4().hex,
                "Content-Type": "application/json",
            },
        )
        if response is not None and response.status == 201:
            with self.lock:
                self.txn_ids.append(response.json()["txn_id"])

    def api_read(self, rng: random.Random) -> None:
        loan_number = rng.choice(self.loans)[1]
        path = rng.choice(
            [f"/api/v1/loans/{loan_number}", f"/api/v1/transactions?loan_account={loan_number}"]
        )
        headers = {**self.proxy, "Authorization": f"Api-Key {self.key}"}
        self.request("api_read", "GET", path, headers=headers)

    def admin(self, rng: random.Random) -> None:
        loan_id = rng.choice(self.loans)[0]
        path = rng.choice(
            [
                "/admin/loans/loanaccount/",
                "/admin/loans/loanaccount/?status__exact=ACTIVE",
                f"/admin/loans/loanaccount/{loan_id}/change/",
            ]
        )
        cookie = f"{settings.SESSION_COOKIE_NAME}={self.session}"
        self.request("admin", "GET", path, headers={**self.proxy, "Cookie": cookie})

    def client(self, seed: int, until: float) -> None:
        rng = random.Random(seed)
        kinds = [kind for kind, weight in MIX for _ in range(weight)]
        while time.monotonic() < until:
            getattr(self, rng.choice(kinds))(rng)


def queue_lag_seconds() -> float:
    """Age of the oldest posting queue item that is due and not yet done (0 when none)."""
    oldest = None
    for status in (QueueStatus.READY, QueueStatus.LEASED):
        for item in queue_query(status, limit=1):
            created = parse_iso(item.created_at)
            oldest = created if oldest is None or created < oldest else oldest
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def raw_write_rate(clients: int, seconds: float) -> float:
    """Conditional PutItem of a transaction-sized item, ``clients`` threads."""
    table = f"{settings.DYNAMODB_TABLE_PREFIX}bench_load_raw"
    client = boto3_client()
    with contextlib.suppress(client.exceptions.ResourceInUseException):
        client.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "txn_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "txn_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    counts = []
    until = time.monotonic() + seconds

    def writer() -> None:
        own, done = boto3_client(), 0
        while time.monotonic() < until:
            own.put_item(
                TableName=table,
                Item={
                    "txn_id": {"S": uuid.uuid4().hex},
                    "branch_day": {"S": branch_day_key(1, datetime.date(2026, 1, 1))},
                    "amount_paise": {"N": "25000"},
                    "mode": {"S": "CASH"},
                    "status": {"S": "RECEIVED"},
                    "receipt_number": {"S": "R-1"},
                    "created_at": {"S": iso(timezone.now())},
                },
                ConditionExpression="attribute_not_exists(txn_id)",
            )
            done += 1
        counts.append(done)

    threads = [threading.Thread(target=writer) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.delete_table(TableName=table)
    return sum(counts) / seconds


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--drain-timeout", type=int, default=300)
    parser.add_argument(
        "--posting-workers",
        type=int,
        default=2 * (os.cpu_count() or 1),
        help="the default queue's concurrency (bin/run's: two a core)",
    )
    args = parser.parse_args()

    loans = pick_loans(2000)
    if len(loans) < 50:
        raise SystemExit("error: load the demo data first (bin/run or manage.py bootstrap)")
    ops = User.objects.get(username="ops1")
    _, key = api_client_create(
        name=f"bench load {uuid.uuid4().hex[:6]}",
        scopes=["transactions:write", "transactions:read", "loans:read"],
        all_branches=True,
        actor=ops,
    )
    session = admin_session("ops1")
    started_day = timezone.localdate()
    processes = start_server(args.port, args.web_workers, args.posting_workers)
    try:
        load = Load(f"http://127.0.0.1:{args.port}", key, session, loans)
        warm_until = time.monotonic() + 5
        warm = [threading.Thread(target=load.client, args=(1000 + n, warm_until)) for n in range(4)]
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join()
        load.samples.clear()
        load.errors.clear()

        lags: list[float] = []
        until = time.monotonic() + args.seconds
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(2):
                lags.append(queue_lag_seconds())

        sampler = threading.Thread(target=sample)
        sampler.start()
        clients = [
            threading.Thread(target=load.client, args=(n, until)) for n in range(args.clients)
        ]
        began = time.monotonic()
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        elapsed = time.monotonic() - began
        stop_sampling.set()
        sampler.join()

        drain_started = time.monotonic()
        while queue_lag_seconds() > 0 and time.monotonic() - drain_started < args.drain_timeout:
            time.sleep(1)
        drain = time.monotonic() - drain_started
        drained = queue_lag_seconds() == 0
    finally:
        stop(processes)

    print(
        f"\nload: {args.clients} clients for {elapsed:.0f} s against gunicorn "
        f"({args.web_workers} workers x 4 threads, DEBUG off) and Celery workers "
        f"(default queue {args.posting_workers}, background queue 1); load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs\n"
    )
    header = f"{'kind':<10} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    print(f"{header}  errors")
    total_errors = 0
    for kind, _ in MIX:
        values = load.samples.get(kind, [])
        if not values:
            continue
        errors = dict(load.errors.get(kind, {}))
        total_errors += sum(errors.values())
        print(
            f"{kind:<10} {len(values):>8} {len(values) / elapsed:>7.1f} "
            f"{statistics.median(values):>7.1f} {percentile(values, 99):>7.1f} "
            f"{max(values):>7.1f}  {sum(errors.values())} {errors or ''}"
        )
    everything = [v for values in load.samples.values() for v in values]
    print(
        f"{'all':<10} {len(everything):>8} {len(everything) / elapsed:>7.1f} "
        f"{statistics.median(everything):>7.1f} {percentile(everything, 99):>7.1f} "
        f"{max(everything):>7.1f}  {total_errors}"
    )
    print(
        f"\nposting queue lag during the load: p50 {statistics.median(lags or [0]):.1f} s, "
        f"p95 {percentile(lags or [0], 95):.1f} s, "
        f"max {max(lags or [0]):.1f} s; drained {'in' if drained else 'NOT within'} "
        f"{drain:.0f} s after the load ({len(load.txn_ids):,} payments accepted)"
    )

    raw = raw_write_rate(args.clients, 10)
    ingest_rate = len(load.samples.get("ingest", [])) / elapsed
    print(
        f"raw DynamoDB conditional PutItem: {raw:,.0f}/s with {args.clients} threads; "
        f"API ingestion under the mixed load {ingest_rate:,.1f}/s = {ingest_rate / raw:.2f} of raw"
    )

    out = io.StringIO()
    try:
        call_command(
            "payments_integrity",
            "--from",
            started_day.isoformat(),
            "--to",  # a payment after a branch's cut-off counts for the next day
            (timezone.localdate() + datetime.timedelta(days=1)).isoformat(),
            "--grace-minutes",
            "0",
            stdout=out,
        )
        integrity_ok = True
    except SystemExit as exc:
        integrity_ok = not exc.code
    print("payments_integrity:", (out.getvalue().strip().splitlines() or ["(no output)"])[-1])
    ok = drained and integrity_ok and total_errors == 0
    print("result:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
