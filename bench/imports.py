"""The loans import (``imports``) against PostgreSQL's COPY of the same rows, in one run.

Run it from the project folder (the local services must be running), on a development
database (never the tests'):

    DATABASE_URL=postgres://.../dev_x DYNAMODB_TABLE_PREFIX=devx_ \
        .venv/bin/python bench/imports.py [--loans 20000] [--tenure 24]

It makes a branch (``BIMP1``), a product and ``--loans`` customers of its own (bulk-created,
not measured), writes a loans file of ``--loans`` rows to a temporary folder, then:

- import: ``import_data loans FILE`` as the command runs it (``imports.services.import_run``):
  its set-based path, a chunk of 1,000 rows a transaction: every row validated by its form
  against the chunk's reference data (read once a chunk), then the loans with their dues,
  their schedules (generated from the terms, ``--tenure`` monthly instalments), their audit
  outbox rows and the result rows written with ``COPY``;
- COPY: the same loans and the same instalments (the schedule computed in Python
  beforehand, not timed) with ``COPY ... FROM STDIN`` into tables made ``LIKE`` the real
  ones, with their indexes and constraints: the fastest way PostgreSQL takes these rows.

It prints each one's loans a second, the import's CPU time (this process), the ratio,
the extrapolation to 1,000,000 loans
against the goal (under 30 minutes), and the process's maximum resident memory before and
after the import (the file is streamed: memory stays flat whatever its length). The
benchmark's loans are deleted at the start of the next run. A benchmark, not a test: it
asserts only that every row was imported.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from tqdm import tqdm  # noqa: E402

from accounts.models import Area, Branch, Region  # noqa: E402
from imports.services import import_run  # noqa: E402
from loans.models import Customer, LoanProduct  # noqa: E402
from loans.schedule import build_schedule  # noqa: E402

BRANCH, PRODUCT, PREFIX = "BIMP1", "BIMP", "BIMP"
AMOUNT = Decimal("120000.00")
DISBURSED = "2026-01-10"


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def set_up(loans: int, tenure: int) -> tuple[Branch, LoanProduct]:
    region, _ = Region.objects.get_or_create(code="BIMP", defaults={"name": "Bench imports"})
    area, _ = Area.objects.get_or_create(code="BIMP", defaults={"name": "Bench", "region": region})
    branch, _ = Branch.objects.get_or_create(
        code=BRANCH, defaults={"name": "Bench imports", "area": area, "state": "Maharashtra"}
    )
    product, _ = LoanProduct.objects.get_or_create(
        code=PRODUCT,
        defaults={
            "name": "Bench",
            "interest_rate": Decimal("18.00"),
            "min_tenure_months": 6,
            "max_tenure_months": 60,
        },
    )
    with connection.cursor() as cursor:  # the last run's loans (cascade: instalments)
        cursor.execute(
            "DELETE FROM loans_instalment WHERE loan_id IN "
            "(SELECT id FROM loans_loanaccount WHERE branch_id = %s)",
            [branch.pk],
        )
        cursor.execute("DELETE FROM loans_loanaccount WHERE branch_id = %s", [branch.pk])
    have = Customer.objects.filter(branch=branch).count()
    if have < loans:
        Customer.objects.bulk_create(
            (
                Customer(
                    customer_number=f"{PREFIX}C{n:09d}",
                    name=f"Bench customer {n}",
                    mobile="9876543210",
                    pan="ABCDE1234F",
                    branch=branch,
                )
                for n in range(have, loans)
            ),
            batch_size=5000,
        )
    return branch, product


def loans_file(path: Path, loans: int, tenure: int) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "loan_number", "customer_number", "branch_code", "product_code",
                "sanctioned_amount", "disbursed_amount", "tenure_months", "due_day",
                "disbursed_on",
            ]
        )  # fmt: skip
        for n in range(loans):
            writer.writerow(
                [f"{PREFIX}L{n:09d}", f"{PREFIX}C{n:09d}", BRANCH, PRODUCT, AMOUNT, AMOUNT,
                 tenure, 5, DISBURSED]
            )  # fmt: skip


def copy_same_rows(branch, product, loans: int, tenure: int) -> float:
    """COPY the same loans and instalments into tables LIKE the real ones; seconds."""
    import datetime

    emi, schedule = build_schedule(
        principal=AMOUNT,
        annual_rate_percent=product.interest_rate,
        tenure_months=tenure,
        frequency="MONTHLY",
        disbursed_on=datetime.date.fromisoformat(DISBURSED),
        due_day=5,
    )
    customers = dict(Customer.objects.filter(branch=branch).values_list("customer_number", "id"))
    loan_columns = [
        "id", "loan_number", "customer_id", "product_id", "branch_id", "sanctioned_amount",
        "disbursed_amount", "interest_rate", "tenure_months", "emi_amount", "due_day",
        "disbursed_on", "status", "outstanding_principal", "outstanding_interest",
        "outstanding_charges", "next_due_amount", "overdue_principal", "overdue_interest",
        "overdue_charges", "dpd", "bucket", "last_payment_amount", "created_at", "updated_at",
    ]  # fmt: skip
    interest = sum(row.interest for row in schedule)
    loan_rows = io.StringIO()
    instalment_rows = io.StringIO()
    instalment_id = 0
    for n in range(loans):
        loan_id = n + 1
        loan_rows.write(
            "\t".join(
                str(v)
                for v in (
                    loan_id,
                    f"{PREFIX}L{n:09d}",
                    customers[f"{PREFIX}C{n:09d}"],
                    product.pk,
                    branch.pk,
                    AMOUNT,
                    AMOUNT,
                    product.interest_rate,
                    tenure,
                    emi,
                    5,
                    DISBURSED,
                    "ACTIVE",
                    AMOUNT,
                    interest,
                    "0.00",
                    emi,
                    "0.00",
                    "0.00",
                    "0.00",
                    0,
                    "CURRENT",
                    "0.00",
                    "2026-12-01 00:00:00+00",
                    "2026-12-01 00:00:00+00",
                )
            )
            + "\n"
        )
        for row in schedule:
            instalment_id += 1
            instalment_rows.write(
                f"{instalment_id}\t{loan_id}\t{row.number}\t{row.due_date}\t{row.principal}\t"
                f"{row.interest}\t0.00\t0.00\t0.00\t0.00\tDUE\n"
            )
    instalment_columns = [
        "id", "loan_id", "number", "due_date", "principal_due", "interest_due", "charges_due",
        "principal_paid", "interest_paid", "charges_paid", "status",
    ]  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_loan (LIKE loans_loanaccount INCLUDING ALL)")
        cursor.execute("CREATE TEMP TABLE bench_instalment (LIKE loans_instalment INCLUDING ALL)")
        started = time.monotonic()
        with cursor.copy(f"COPY bench_loan ({', '.join(loan_columns)}) FROM STDIN") as copy:
            copy.write(loan_rows.getvalue())
        with cursor.copy(
            f"COPY bench_instalment ({', '.join(instalment_columns)}) FROM STDIN"
        ) as copy:
            copy.write(instalment_rows.getvalue())
        seconds = time.monotonic() - started
        cursor.execute("SELECT count(*) FROM bench_instalment")
        assert cursor.fetchone()[0] == loans * len(schedule)
        transaction.set_rollback(True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--tenure", type=int, default=24)
    args = parser.parse_args()
    branch, product = set_up(args.loans, args.tenure)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "loans.csv"
        loans_file(path, args.loans, args.tenure)
        rss_before = max_rss_mb()
        cpu_before = cpu_seconds()
        started = time.monotonic()
        with path.open("rb") as source, tqdm(total=args.loans, unit=" loans") as bar:
            run = import_run(
                kind="loans", file_name=path.name, source=source, actor=None, progress=bar.update
            )
        import_seconds = time.monotonic() - started
        import_cpu = cpu_seconds() - cpu_before
        rss_after = max_rss_mb()
    assert run.created == args.loans, run.counts
    copy_seconds = copy_same_rows(branch, product, args.loans, args.tenure)
    import_rate, copy_rate = args.loans / import_seconds, args.loans / copy_seconds
    million = 1_000_000 / import_rate / 60
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"{args.loans:,} loans with {args.tenure} instalments each; {os.cpu_count()} CPUs, "
        f"load average {load}"
    )
    print(f"import: {import_seconds:8.1f} s  {import_rate:9,.0f} loans/s")
    print(f"COPY:   {copy_seconds:8.1f} s  {copy_rate:9,.0f} loans/s  (import/COPY "
          f"{import_rate / copy_rate:.3f})")  # fmt: skip
    print(
        f"1,000,000 loans by import (extrapolated from {args.loans:,}): {million:.0f} min; "
        f"goal < 30 min: {'ok' if million < 30 else 'MISS'}"
    )
    print(
        f"import CPU of this process (user+sys; PostgreSQL's own not counted): {import_cpu:.1f} s,"
        f" {args.loans / import_cpu:,.0f} loans per CPU second"
    )
    print(f"max RSS: {rss_before:.0f} MB before the import, {rss_after:.0f} MB after")


if __name__ == "__main__":
    main()
