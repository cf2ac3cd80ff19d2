"""API ingestion against a real gunicorn, and the raw TransactWriteItems rate of the same
items in the same run.

Run it from the project folder (the local services running, the development database
loaded by ``bin/run`` or ``manage.py demo_data``):

    .venv/bin/python bench/ingest.py [--payments 2000] [--clients 8] [--port 8100]
                                     [--web-workers 2] [--threads 4] [--profile 300]

1. **Raw**: the same number of payments written straight to DynamoDB with ``--clients``
   threads, each one ``TransactWriteItems`` of the very items ingestion writes (the
   idempotency key with its response, the transaction, its queue item and its audit event,
   each conditional "absent"), built by the same code, through boto3's low-level client.
2. **API**: it starts its own gunicorn (``DJANGO_DEBUG=0``, behind a pretend TLS proxy),
   creates an API client limited to the branches of the loans it pays, and ``--clients``
   threads, each with its own keep-alive connection, send ``POST /api/v1/transactions``
   with a new Idempotency-Key each, every request as soon as the previous one answered.
   The gunicorn worker processes' CPU times are read from ``/proc`` before and after.

It prints the machine (CPU count, load average), each rate, p50/p99 latency, the ratio
API/raw (goal >= 0.8) and the server CPU per payment (goal <= 2 ms). With ``--profile N``
it first sends N payments through the WSGI handler in this process and prints the CPU of
each piece of a request (middleware, authentication, parsing, the PostgreSQL read, the
items, the DynamoDB call, the hand-over to the process's publisher, the response), and the
publisher thread's broker publish (a task for the payments of each 50 ms), per payment,
measured by wrapping those functions with a per-thread CPU clock.

No Celery worker is started: the payments stay RECEIVED in the development stores until
``bin/run``'s workers post them (their posting tasks wait in Redis; the sweep posts them
anyway). Exit status 1 when a request failed.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import inspect
import io
import json
import os
import queue
import sys
import threading
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
from bench.servers import HOST, SERVER_ENV, server_cpu, start_gunicorn, stop  # noqa: E402

os.environ.update(SERVER_ENV)  # the in-process profile runs as the server does

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402
from tqdm import tqdm  # noqa: E402

from accounts.models import Branch, User  # noqa: E402
from api.principal import ApiPrincipal  # noqa: E402
from api.services import api_client_create  # noqa: E402
from bench.figures import machine, percentile  # noqa: E402
from dynamo.connection import boto3_client  # noqa: E402
from loans.models import LoanAccount  # noqa: E402
from payments.services import ingest  # noqa: E402

# --- the payments ----------------------------------------------------------------------


def pick_loans(count: int) -> list[LoanAccount]:
    loans = list(
        LoanAccount.objects.filter(status=LoanAccount.Status.ACTIVE)
        .select_related("branch")
        .order_by("id")[:count]
    )
    if not loans:
        raise SystemExit("error: load the demo data first (bin/run or manage.py demo_data)")
    return loans


def bodies(loans: list[LoanAccount], count: int, tag: str) -> list[tuple[str, bytes]]:
    """(Idempotency-Key, JSON body): a small UPI payment on each loan in turn."""
    return [
        (
            f"bench-{tag}-{i:06d}-{uuid.uuid4().hex[:8]}",
            json.dumps(
                {
                    "loan_account": loans[i % len(loans)].loan_number,
                    "amount": f"{1 + i % 97}.{i % 100:02d}",
                    "mode": "UPI",
                    "collector": "bench",
                }
            ).encode(),
        )
        for i in range(count)
    ]


# --- raw: the same items in one TransactWriteItems each -----------------------------------


def raw_transaction(loan: LoanAccount, key: str, body: bytes, principal) -> list[dict]:
    """The TransactItems ingestion sends for this payment, built by ingestion's own code."""
    data = json.loads(body)
    payment = ingest.PaymentInput(
        loan_number=loan.loan_number,
        amount=Decimal(data["amount"]),
        mode=data["mode"],
        collector=data["collector"],
    )
    request_hash = ingest._hash(payment.canonical())
    now = timezone.now()
    items = ingest.accepted_items(
        payment,
        loan=loan,
        business_date=timezone.localdate(),
        source="bench:raw",
        principal=principal,
        dedup_key=ingest._dedup_key("bench:raw", key),
        request_hash=request_hash,
        now=now,
    )
    return [{"Put": put} for put in ingest.accepted_puts(items, request_hash=request_hash, now=now)]


def run_pool(work: list, clients: int, send, bar: tqdm) -> tuple[float, list[float]]:
    """Send every item of ``work`` once, from ``clients`` threads, each with its own
    ``send`` (``send()`` gives a thread's sender: item -> None, or an error text).
    Returns (seconds, latencies); exits on an error."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in work:
        todo.put(item)
    latencies: list[float] = []
    errors: list[str] = []

    def thread() -> None:
        sender = send()
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            began = time.perf_counter()
            error = sender(item)
            latencies.append(time.perf_counter() - began)
            if error:
                errors.append(error)
            bar.update()

    threads = [threading.Thread(target=thread) for _ in range(clients)]
    began = time.perf_counter()
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    if errors:
        raise SystemExit(f"error: {len(errors)} failed: {errors[0]}")
    return time.perf_counter() - began, latencies


def raw_sender():
    client = boto3_client()

    def send(items: list[dict]) -> str | None:
        try:
            client.transact_write_items(TransactItems=items)
        except Exception as exc:  # counted and reported, never hidden
            return repr(exc)[:200]
        return None

    return send


# --- API: a real gunicorn --------------------------------------------------------------


def post(conn: http.client.HTTPConnection, api_key: str, key: str, body: bytes):
    conn.request(
        "POST",
        "/api/v1/transactions",
        body=body,
        headers={
            "Authorization": f"Api-Key {api_key}",
            "Idempotency-Key": key,
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",
        },
    )
    response = conn.getresponse()
    return response.status, response.read()


def api_sender(port: int, api_key: str):
    def sender():
        conn = http.client.HTTPConnection(HOST, port, timeout=60)

        def send(payment: tuple[str, bytes]) -> str | None:
            status, answer = post(conn, api_key, *payment)
            return None if status == 201 else f"{status} {answer[:200]!r}"

        return send

    return sender


# --- the profile: CPU of each piece, in this process ------------------------------------


# (label, object, attribute): each wrapped to add its per-thread CPU time, inclusive.
def _pieces():
    from django.core.handlers.base import BaseHandler
    from django.core.handlers.wsgi import WSGIHandler
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from api.authentication import ApiKeyAuthentication
    from core.batching import Batcher
    from payments.api import views
    from payments.api.serializers import PaymentInSerializer

    return [
        ("request (WSGI handler)", WSGIHandler, "__call__"),
        ("URL resolving + view", BaseHandler, "_get_response"),
        ("DRF dispatch", APIView, "dispatch"),
        ("  authentication (API key read)", ApiKeyAuthentication, "authenticate"),
        ("  JSON parsing", Request, "_load_data_and_files"),
        ("  serializer validation", PaymentInSerializer, "is_valid"),
        ("  payment_ingest", views, "payment_ingest"),
        ("    PostgreSQL validation read", ingest, "_validate"),
        ("    audit event item", ingest, "_intake_audit"),
        ("    TransactWriteItems", ingest, "transact_put"),
        ("    hand-over to the publisher", ingest, "_enqueue_posting"),
        ("  response rendering", Response, "rendered_content"),
        ("broker publish (the publisher's thread)", Batcher, "_hand_on"),
    ]


def profile(api_key: str, payments) -> list[tuple[str, float]]:
    """CPU milliseconds per request of each piece (inclusive of what it calls)."""
    totals: dict[str, float] = defaultdict(float)
    local = threading.local()
    restore = []

    def timed(label, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            depth = getattr(local, label, 0)
            setattr(local, label, depth + 1)
            began = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                setattr(local, label, depth)
                if depth == 0:  # count a recursive call once
                    totals[label] += time.thread_time() - began

        return wrapper

    for label, owner, name in _pieces():
        original = inspect.getattr_static(owner, name)
        if isinstance(original, property):
            wrapped = property(timed(label, original.fget))
        else:
            wrapped = timed(label, original)
        restore.append((owner, name, original if name in vars(owner) else None))
        setattr(owner, name, wrapped)
    # imported after the wrapping: Django's handlers keep the functions they were built with
    from config.wsgi import application as app
    from payments.services import _common as postings

    def call(key: str, body: bytes) -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/transactions",
            "SERVER_NAME": HOST,
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": HOST,
            "HTTP_X_FORWARDED_PROTO": "https",
            "HTTP_AUTHORIZATION": f"Api-Key {api_key}",
            "HTTP_IDEMPOTENCY_KEY": key,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": HOST,
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        status = []
        b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("201"):
            raise SystemExit(f"error: profile request answered {status[0]}")

    try:
        warm = len(payments) // 5
        for key, body in payments[:warm]:
            call(key, body)
        totals.clear()
        measured = payments[warm:]
        for key, body in tqdm(measured, desc="profile", unit="req", leave=False):
            call(key, body)
        postings._postings.drain()  # what still waits is published (and counted) now
    finally:
        for owner, name, original in restore:
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
    return [(label, 1000 * totals[label] / len(measured)) for label, _, _ in _pieces()]


# --- main --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()

    loans = pick_loans(200)
    branches = Branch.objects.filter(pk__in={loan.branch_id for loan in loans})
    client, api_key = api_client_create(
        name=f"bench ingest {uuid.uuid4().hex[:6]}",
        scopes=["transactions:write"],
        allowed_branches=branches,
        actor=User.objects.get(username="ops1"),
    )
    print(f"machine: {machine()}")

    if args.profile:
        pieces = profile(api_key, bodies(loans, args.profile, "profile"))
        print(
            f"\nCPU per request in one process ({args.profile} requests, the first fifth warm-up):"
        )
        for label, ms in pieces:
            print(f"  {label:<34} {ms:6.2f} ms")

    if not args.payments:  # --payments 0: the profile alone
        return 0
    by_number = {loan.loan_number: loan for loan in loans}
    principal = ApiPrincipal(client)
    raw_payments = bodies(loans, args.payments, "raw")
    transactions = [
        raw_transaction(by_number[json.loads(body)["loan_account"]], key, body, principal)
        for key, body in raw_payments
    ]
    with tqdm(total=args.payments, desc="raw TransactWriteItems", unit="txn") as bar:
        raw_s, raw_lat = run_pool(transactions, args.clients, raw_sender, bar)

    server = start_gunicorn(args.port, args.web_workers, args.threads, name="ingest")
    try:
        api_payments = bodies(loans, args.payments, "api")
        warm = bodies(loans, 100, "warm")
        with tqdm(total=len(warm), desc="warm-up", unit="req", leave=False) as bar:
            run_pool(warm, args.clients, api_sender(args.port, api_key), bar)
        cpu_before = server_cpu(server.pid)
        with tqdm(total=args.payments, desc="API ingestion", unit="req") as bar:
            api_s, api_lat = run_pool(
                api_payments, args.clients, api_sender(args.port, api_key), bar
            )
        cpu_after = server_cpu(server.pid)
    finally:
        stop([server])

    raw_rate, api_rate = args.payments / raw_s, args.payments / api_s
    cpu_ms = 1000 * (cpu_after - cpu_before) / args.payments
    print(
        f"\n{args.payments:,} payments, {args.clients} clients; gunicorn {args.web_workers} "
        f"workers x {args.threads} threads; machine: {machine()}"
    )
    for name, rate, lat in (
        ("raw TransactWriteItems", raw_rate, raw_lat),
        ("API", api_rate, api_lat),
    ):
        print(
            f"  {name:<24} {rate:8,.0f}/s   p50 {1000 * percentile(lat, 50):6.1f} ms   "
            f"p99 {1000 * percentile(lat, 99):6.1f} ms"
        )
    print(f"  ratio API/raw            {api_rate / raw_rate:8.2f}   (goal >= 0.8)")
    print(f"  server CPU per payment   {cpu_ms:8.2f} ms (gunicorn master and workers; goal <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
