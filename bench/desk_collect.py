"""The collect form's confirm at the branch desk, against the raw ingestion, in one run.

Run it from the project folder, with a development database and table prefix of its own
(the local services must be running):

    DATABASE_URL=postgres://postgres@127.0.0.1:25432/dev_desk DYNAMODB_TABLE_PREFIX=dev_desk_ \\
    REDIS_URL=redis://127.0.0.1:26379/4 .venv/bin/python bench/desk_collect.py [--collects 200]

It migrates that database, creates the DynamoDB tables, and makes a branch with one staff
user and ``--collects`` loans. Then, for each loan, as the staff user through Django's test
Client (``force_login``): the form (GET) and the preview (POST) untimed, and the confirm
(POST: the form's checks, the series row locked, the duplicate check, the ingestion into
DynamoDB, the receipt row, the redirect) timed. For comparison, in the same run and on the
same loans: ``payment_ingest`` called directly with the same payments (new keys and
receipt numbers), the raw floor of any payment. Posting is excluded from both: no worker
takes the queued postings (they are purged at the end), so the figures are the counter's
own wait. Prints p50, p95 (nearest rank), max in ms, and the ratio confirm / raw.
Goal: p95 of the confirm at most 150 ms. A benchmark: it asserts nothing but that every
confirm lands on its receipt.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Area, Branch, Region, User  # noqa: E402
from config.celery import app as celery_app  # noqa: E402
from desk.models import DeskReceipt  # noqa: E402
from desk.views import collect_url  # noqa: E402
from loans.models import LoanProduct  # noqa: E402
from loans.services import customer_create, loan_account_create  # noqa: E402
from payments.services import PaymentInput, payment_ingest  # noqa: E402

GOAL_MS = 150.0
BRANCH = "BNCH1"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def figures(name: str, ms: list[float]) -> str:
    return (
        f"{name:<28} n={len(ms):<4} p50={statistics.median(ms):7.1f}  "
        f"p95={percentile(ms, 95):7.1f}  max={max(ms):7.1f} ms"
    )


def setup(collects: int) -> tuple[User, list]:
    call_command("migrate", verbosity=0)
    call_command("ddb_tables", "create", verbosity=0)
    region, _ = Region.objects.get_or_create(code="RBNCH", defaults={"name": "Bench"})
    area, _ = Area.objects.get_or_create(code="ABNCH", defaults={"name": "Bench", "region": region})
    branch, _ = Branch.objects.get_or_create(
        code=BRANCH, defaults={"name": "Bench branch", "area": area, "state": "Maharashtra"}
    )
    staff = User.objects.filter(username="bench.desk").first()
    if staff is None:
        staff = User.objects.create_user(
            "bench.desk", password=None, is_staff=True, level="BRANCH",
            home_branch=branch, first_name="Bench", last_name="Staff",
        )  # fmt: skip
        from django.contrib.auth.models import Group

        staff.groups.add(Group.objects.get(name="Branch Staff"))
    product, _ = LoanProduct.objects.get_or_create(
        code="BENCH",
        defaults={
            "name": "Bench loan", "interest_rate": Decimal("18.00"), "min_tenure_months": 6,
            "max_tenure_months": 60, "bounce_charge": Decimal("500.00"),
        },
    )  # fmt: skip
    loans = list(branch.loans.filter(status="ACTIVE").order_by("pk")[: collects * 2])
    for n in range(len(loans), collects * 2):
        customer = customer_create(
            actor=None, name=f"Bench customer {n}", mobile=f"9{n:09d}"[-10:].replace("0", "7", 1),
            pan=f"BNCHP{n % 10000:04d}Q", branch=branch,
        )  # fmt: skip
        loans.append(
            loan_account_create(
                actor=None, customer=customer, branch=branch, product=product,
                sanctioned_amount=Decimal("100000.00"), disbursed_amount=Decimal("100000.00"),
                tenure_months=12, due_day=5, disbursed_on=timezone.localdate().replace(day=1),
            )
        )  # fmt: skip
    return staff, loans


CPU_MS: list[float] = []  # this process's CPU time per confirm (Python: views, ORM, boto)


def confirm_round_trips(client: Client, loans, amount: Decimal) -> list[float]:
    timings = []
    for loan in loans:
        url = collect_url(loan.loan_number)
        token = re.search(r'name="token" value="([^"]+)"', client.get(url).content.decode())[1]
        data = {"token": token, "amount": str(amount), "mode": "CASH", "remarks": "bench"}
        client.post(url, {**data, "action": "preview"})
        started, cpu = time.perf_counter(), time.process_time()
        response = client.post(url, {**data, "action": "confirm"})
        timings.append((time.perf_counter() - started) * 1000)
        CPU_MS.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 302 and "/desk/receipts/" in response["Location"], response
    return timings


def raw_ingests(staff, loans, amount: Decimal) -> list[float]:
    timings = []
    stamp = timezone.now().strftime("%H%M%S%f")
    for n, loan in enumerate(loans):
        payment = PaymentInput(
            loan_number=loan.loan_number, amount=amount, mode="CASH",
            business_date=timezone.localdate(), receipt_number=f"RAW-{stamp}-{n}",
            collector="Bench Staff (bench.desk)",
        )  # fmt: skip
        started = time.perf_counter()
        payment_ingest(
            payment=payment, idempotency_key=f"raw-{stamp}-{n}", principal=staff, source="bench"
        )
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collects", type=int, default=200)
    args = parser.parse_args()
    staff, loans = setup(args.collects)
    logging.disable(logging.INFO)  # axes logs every login
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    # Warm up (templates, connections, the series row), then alternate halves so that the
    # two measures share the machine's load as evenly as possible.
    # Amounts of this run only, so that no collect is a possible duplicate of an earlier run's.
    run = int(timezone.now().timestamp()) % 100_000
    confirm_round_trips(client, loans[:5], Decimal(f"{run}.01"))
    raw_ingests(staff, loans[:5], Decimal(f"{run}.02"))
    amount = Decimal(f"{run}.03")
    CPU_MS.clear()
    half = args.collects // 2
    confirm = confirm_round_trips(client, loans[:half], amount)
    raw = raw_ingests(staff, loans[half : args.collects], amount)
    confirm += confirm_round_trips(client, loans[args.collects : args.collects + half], amount)
    raw += raw_ingests(staff, loans[args.collects + half : args.collects * 2], amount)
    celery_app.control.purge()
    database, prefix = settings.DATABASES["default"]["NAME"], settings.DYNAMODB_TABLE_PREFIX
    print(f"database {database}, tables {prefix}*")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    print(figures("confirm (Django, test client)", confirm))
    print(figures("payment_ingest (raw floor)", raw))
    print(f"confirm CPU time of this process: p50 {statistics.median(CPU_MS):.1f} ms")
    ratio = statistics.median(confirm) / statistics.median(raw)
    p95 = percentile(confirm, 95)
    print(f"confirm / raw at p50: {ratio:.2f}x; goal p95 <= {GOAL_MS:.0f} ms: "
          f"{'met' if p95 <= GOAL_MS else 'MISSED'} ({p95:.1f} ms)")  # fmt: skip
    print(f"desk receipts at {BRANCH}: {DeskReceipt.objects.filter(branch__code=BRANCH).count()}")


if __name__ == "__main__":
    main()
