"""compare_legacy's rate and memory on a large extract, against PostgreSQL's own ``COPY``
of the same file in the same run.

Run it from the project folder on a development database of its own with the demo data
(see docs/benchmarks.md), e.g.:

    DATABASE_URL=postgres://postgres@127.0.0.1:25432/dev_legacy DYNAMODB_TABLE_PREFIX=devlegacy_ \\
    REDIS_URL=redis://127.0.0.1:26379/6 .venv/bin/python bench/compare_legacy.py [--rows 300000]

The extract holds every active loan of the database with the figures it carries (most
agree, so they are compared figure by figure) and, to reach ``--rows``, loans this system
does not have (each becomes a difference written to the result file). The comparison runs
first on a tenth of the rows, then on all of them: the peak memory of the process after
each shows whether memory stays flat as the file grows. Raw: the same file copied into a
temporary table with ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` through psycopg.

This is a benchmark, not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from loans.models import LoanAccount  # noqa: E402
from reconciliation.legacy_compare import COLUMNS, legacy_compare  # noqa: E402


def write_extract(path: Path, rows: int) -> int:
    """The extract: the active loans' own figures, then filler loans; returns the loans."""
    written = 0
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        loans = (
            LoanAccount.objects.filter(status="ACTIVE")
            .order_by("id")
            .values_list(
                "loan_number",
                "outstanding_principal",
                "outstanding_interest",
                "outstanding_charges",
                "last_payment_date",
                "dpd",
                "branch__code",
            )
        )
        for row in loans.iterator(chunk_size=10_000):
            if written == rows:
                return written
            writer.writerow(["" if v is None else v for v in row])
            written += 1
        here = written
        for i in range(rows - written):
            writer.writerow(
                [f"LEG{i:09d}", "12345.67", "890.12", "0.00", "2026-11-05", i % 40, "OLD01"]
            )
        return here


def compare(path: Path) -> tuple[float, int]:
    with path.open("rb") as extract, tempfile.TemporaryFile("w+", newline="") as out:
        started = time.perf_counter()
        report = legacy_compare(file=extract, name=path.name, as_of=timezone.localdate(), out=out)
        return time.perf_counter() - started, report.differences


def raw_copy(path: Path) -> float:
    with transaction.atomic(), connection.cursor() as cursor, path.open("rb") as f:
        cursor.execute(
            "CREATE TEMPORARY TABLE raw_extract (loan_number text, outstanding_principal "
            "numeric(16,2), outstanding_interest numeric(16,2), outstanding_charges "
            "numeric(16,2), last_payment_date date, dpd integer, branch_code text) "
            "ON COMMIT DROP"
        )
        started = time.perf_counter()
        with cursor.cursor.copy("COPY raw_extract FROM STDIN (FORMAT csv, HEADER)") as copy:
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - started


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="rows of the large extract")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small, large = Path(folder, "small.csv"), Path(folder, "large.csv")
        write_extract(small, args.rows // 10)
        here = write_extract(large, args.rows)
        size = large.stat().st_size / 1024 / 1024
        before = peak_mb()
        small_s, _ = compare(small)
        after_small = peak_mb()
        large_s, differences = compare(large)
        after_large = peak_mb()
        raw_s = raw_copy(large)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"extract: {args.rows:,} rows ({size:.1f} MB), {here:,} loans of this system, "
        f"{args.rows - here:,} not; load average {load} on {os.cpu_count()} CPUs"
    )
    print(f"compare {args.rows // 10:,} rows: {small_s:.1f} s; peak memory {after_small:.0f} MB")
    print(
        f"compare {args.rows:,} rows: {large_s:.1f} s ({args.rows / large_s:,.0f} rows/s), "
        f"{differences:,} differences; peak memory {after_large:.0f} MB "
        f"(before any comparison {before:.0f} MB)"
    )
    print(
        f"raw COPY of the same file: {raw_s:.2f} s ({args.rows / raw_s:,.0f} rows/s); "
        f"compare / raw = {large_s / raw_s:.1f}x"
    )


if __name__ == "__main__":
    main()
