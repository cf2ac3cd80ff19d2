"""The DCR aggregation over one business date of many branches, against the raw store.

Run it from the project folder (the local services must be running):

    .venv/bin/python bench/dcr_aggregation.py [--transactions 1000000] [--branches 400]
                                              [--workers 8] [--rounds 2] [--reload]

It loads ``--transactions`` payment transactions for one business date, spread evenly over
``--branches`` branches, into a DynamoDB Local of its own that keeps its data in memory
(``bin/services`` with ``LOCAL_SERVICES_DIR=.local/bench``, port 28100, table prefix
``bench_dcr_``): DynamoDB Local on disk (SQLite) writes about 130 items a second on this
kind of machine, a million in two hours; in memory about ten times faster. Raw reads and
the aggregation both read that same instance, so the ratio compares like with like. It
stays running for the next run (which finds the data loaded and skips loading; stop it
with ``LOCAL_SERVICES_DIR=.local/bench LOCAL_DYNAMODB_PORT=28100 bin/services stop
dynamodb``). ``BENCH_DYNAMODB_ENDPOINT`` points the benchmark at another DynamoDB
instead. Loading uses parallel batch writes with a progress bar (``--reload`` writes the
items again: the ids are fixed, so nothing is duplicated). The branches are rows of the
development database (codes ``BN001``...), inactive, in an area of their own.

Then, in the same run and alternating, ``--rounds`` times each:
- raw boto3: every branch's partition read with boto3 ``Query`` on the ``branch_day``
  index, projecting the same attributes, ``--workers`` threads, nothing done with the items;
- raw wire: the same queries through ``dynamo.query`` (the items as DynamoDB sends them,
  only ``json.loads``), nothing done with the items: the fastest read of this data;
- aggregation: ``reconciliation.services.dcr_build_many`` over the same branch-days, as
  the daily job runs it: the reads (``dynamo.query``, ``--workers`` threads), the sums, and
  the DCR and DBS upserts in Postgres, one transaction per branch.
It prints each one's wall time and transactions per second (best round), the ratio
against boto3, and the ratio against the faster raw read, which is held to the goal (at
least 0.8). A benchmark, not a test: it asserts only that every read and the aggregation
counted every transaction.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
os.environ["DYNAMODB_TABLE_PREFIX"] = "bench_dcr_"  # never the development tables
BENCH_DDB_PORT = "28100"

from bench.local_dynamodb import start_in_memory  # noqa: E402

os.environ["DYNAMODB_ENDPOINT"] = os.environ.get("BENCH_DYNAMODB_ENDPOINT") or (
    start_in_memory(port=BENCH_DDB_PORT)
)
# DynamoDB Local under a bulk load answers slowly: wait rather than fail
os.environ.setdefault("DYNAMODB_READ_TIMEOUT", "120")
os.environ.setdefault("DYNAMODB_MAX_RETRIES", "10")

import django  # noqa: E402

django.setup()

from django.db.models import Sum  # noqa: E402
from tqdm import tqdm  # noqa: E402

from accounts.models import Area, Branch, Region  # noqa: E402
from core.clock import iso  # noqa: E402
from dynamo.connection import boto3_client  # noqa: E402
from dynamo.query import query_partition  # noqa: E402
from dynamo.tables import ensure_table  # noqa: E402
from payments.ddb_models import TransactionItem, branch_day_key  # noqa: E402
from reconciliation.models import Dcr  # noqa: E402
from reconciliation.selectors import READ_ATTRIBUTES  # noqa: E402
from reconciliation.services import dcr_build_many  # noqa: E402

GOAL = 0.8
BUSINESS_DATE = datetime.date(2026, 1, 15)
MODES = ("CASH", "UPI", "CHEQUE", "NEFT", "NACH")
STATUSES = ("POSTED",) * 8 + ("RECEIVED", "FAILED")  # 10% RECEIVED, 10% FAILED


def bench_branches(count: int) -> list[Branch]:
    region, _ = Region.objects.get_or_create(code="BENCH", defaults={"name": "Benchmark"})
    area, _ = Area.objects.get_or_create(
        code="BENCH", defaults={"name": "Benchmark", "region": region}
    )
    Branch.objects.bulk_create(
        [
            Branch(
                code=f"BN{n:03d}",
                name=f"Bench branch {n}",
                area=area,
                state="Maharashtra",
                is_active=False,  # the 15-minute tick of bin/run leaves them alone
            )
            for n in range(1, count + 1)
        ],
        ignore_conflicts=True,
    )
    Branch.objects.filter(area=area, is_active=True).update(is_active=False)
    return list(Branch.objects.filter(area=area).order_by("code")[:count])


def item(n: int, branch_id: int) -> dict:
    """A transaction as DynamoDB stores it (what payment_ingest writes)."""
    created = datetime.datetime(2026, 1, 15, 4, 0, tzinfo=datetime.UTC) + datetime.timedelta(
        milliseconds=n
    )
    return {
        "txn_id": {"S": f"BENCH{n:021d}"},
        "branch_day": {"S": branch_day_key(branch_id, BUSINESS_DATE)},
        "created_at": {"S": iso(created)},
        "loan_number": {"S": f"LN{n % 50000:08d}"},
        "loan_id": {"N": str(n % 50000 + 1)},
        "branch_id": {"N": str(branch_id)},
        "business_date": {"S": BUSINESS_DATE.isoformat()},
        "amount_paise": {"N": str(10_000 + (n * 7919) % 5_000_000)},
        "mode": {"S": MODES[n % len(MODES)]},
        "status": {"S": STATUSES[n % len(STATUSES)]},
        "receipt_number": {"S": f"R{n:09d}"},
        "collector": {"S": f"Agent {n % 12}"},
        "source": {"S": "bench"},
    }


def loaded_per_branch(branches: list[Branch]) -> int:
    """How many items each branch has (item n goes to branch n % branches, so a load
    that stopped part-way left the first and last branch with k and k or k-1)."""
    client = boto3_client()
    counts = []
    for branch in (branches[0], branches[-1]):
        count = 0
        kwargs = {
            "TableName": TransactionItem.Meta.table_name,
            "IndexName": "branch_day",
            "KeyConditionExpression": "branch_day = :k",
            "ExpressionAttributeValues": {":k": {"S": branch_day_key(branch.pk, BUSINESS_DATE)}},
            "Select": "COUNT",
        }
        while True:
            page = client.query(**kwargs)
            count += page["Count"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        counts.append(count)
    return min(counts)


def load(branches: list[Branch], total: int, workers: int, start: int = 0) -> float:
    """Parallel batch writes (25 items each) with a progress bar; returns items/s.
    ``start`` resumes a load that stopped part-way (the ids are fixed)."""
    table = TransactionItem.Meta.table_name
    local = threading.local()

    def write(start: int) -> int:
        client = getattr(local, "client", None) or boto3_client()
        local.client = client
        end = min(start + 25, total)
        requests = [
            {"PutRequest": {"Item": item(n, branches[n % len(branches)].pk)}}
            for n in range(start, end)
        ]
        while requests:
            answer = client.batch_write_item(RequestItems={table: requests})
            requests = answer.get("UnprocessedItems", {}).get(table, [])
            if requests:
                time.sleep(0.05)
        return end - start

    started = time.perf_counter()
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=total, initial=start, unit="txn", desc="loading DynamoDB", smoothing=0.1) as bar,
    ):
        for written in pool.map(write, range(start, total, 25)):
            bar.update(written)
    return (total - start) / (time.perf_counter() - started)


def raw_read(branches: list[Branch], workers: int) -> tuple[float, int]:
    """boto3's ``Query``, as any client reads: botocore parses every item."""
    table = TransactionItem.Meta.table_name
    local = threading.local()
    projection = ", ".join(f"#a{i}" for i in range(len(READ_ATTRIBUTES)))
    names = {f"#a{i}": name for i, name in enumerate(READ_ATTRIBUTES)}

    def read(branch: Branch) -> int:
        client = getattr(local, "client", None) or boto3_client()
        local.client = client
        kwargs = {
            "TableName": table,
            "IndexName": "branch_day",
            "KeyConditionExpression": "branch_day = :k",
            "ExpressionAttributeValues": {":k": {"S": branch_day_key(branch.pk, BUSINESS_DATE)}},
            "ProjectionExpression": projection,
            "ExpressionAttributeNames": names,
        }
        count = 0
        while True:
            page = client.query(**kwargs)
            count += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                return count
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    return _timed(read, branches, workers)


def wire_read(branches: list[Branch], workers: int) -> tuple[float, int]:
    """The same queries through ``dynamo.query`` (the items as DynamoDB sends them, only
    ``json.loads``): the fastest read of this data from Python, what the store gives."""

    def read(branch: Branch) -> int:
        items = query_partition(
            table=TransactionItem.Meta.table_name,
            index="branch_day",
            key_name="branch_day",
            key_value=branch_day_key(branch.pk, BUSINESS_DATE),
            attributes=READ_ATTRIBUTES,
        )
        return sum(1 for _ in items)

    return _timed(read, branches, workers)


def _timed(read, branches: list[Branch], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        count = sum(pool.map(read, branches))
    return time.perf_counter() - started, count


def aggregate(branches: list[Branch], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    report = dcr_build_many(pairs=[(b.pk, BUSINESS_DATE) for b in branches], workers=workers)
    elapsed = time.perf_counter() - started
    if report.failed:
        raise SystemExit(f"error: {len(report.failed)} branch(es) failed: {report.failed}")
    return elapsed, report.transactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--branches", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reload", action="store_true", help="write the data set again")
    parser.add_argument(
        "--load-only", action="store_true", help="load (or finish loading) and stop"
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.transactions % args.branches:
        raise SystemExit("error: --transactions must be a multiple of --branches")

    ensure_table(TransactionItem)
    branches = bench_branches(args.branches)
    per_branch = args.transactions // args.branches
    print(
        f"data set: {args.transactions:,} transactions, {len(branches)} branches, "
        f"{per_branch:,} each, business date {BUSINESS_DATE}, table "
        f"{TransactionItem.Meta.table_name}"
    )
    have = 0 if args.reload else loaded_per_branch(branches)
    if have < per_branch:
        start = have * len(branches)
        began = time.perf_counter()
        rate = load(branches, args.transactions, args.workers, start=start)
        print(
            f"loaded {args.transactions - start:,} items in {time.perf_counter() - began:,.0f} s "
            f"({rate:,.0f} items/s)"
        )
    elif have > per_branch:
        raise SystemExit(f"error: {have:,} items per branch are loaded; use --reload")
    else:
        print("already loaded (--reload to write it again)")
    if args.load_only:
        return

    raws, wires, aggs = [], [], []
    for round_number in range(1, args.rounds + 1):
        raw_time, raw_count = raw_read(branches, args.workers)
        wire_time, wire_count = wire_read(branches, args.workers)
        agg_time, agg_count = aggregate(branches, args.workers)
        if not agg_count == raw_count == wire_count == args.transactions:
            raise SystemExit(
                f"error: raw read {raw_count:,}, wire read {wire_count:,}, "
                f"aggregation {agg_count:,}"
            )
        raws.append(raw_time)
        wires.append(wire_time)
        aggs.append(agg_time)
        print(
            f"round {round_number}: "
            f"raw boto3 {raw_time:.2f} s ({raw_count / raw_time:,.0f} txn/s), "
            f"raw wire {wire_time:.2f} s ({wire_count / wire_time:,.0f} txn/s), "
            f"aggregation {agg_time:.2f} s ({agg_count / agg_time:,.0f} txn/s)"
        )
    raw_rate = args.transactions / min(raws)
    wire_rate = args.transactions / min(wires)
    agg_rate = args.transactions / min(aggs)
    collected = Dcr.objects.filter(branch__in=branches, business_date=BUSINESS_DATE).aggregate(
        total=Sum("collected_amount"), count=Sum("collected_count")
    )
    print(
        f"DCRs: {len(branches)} written, {collected['count']:,} collected receipts, "
        f"₹{collected['total'] or Decimal('0'):,}"
    )
    print(f"raw DynamoDB query rate, boto3: {raw_rate:,.0f} txn/s (best of {args.rounds})")
    print(f"raw DynamoDB query rate, wire:  {wire_rate:,.0f} txn/s (best of {args.rounds})")
    print(f"aggregation:                    {agg_rate:,.0f} txn/s, {min(aggs):.2f} s wall (best)")
    print(f"ratio aggregation / raw boto3: {agg_rate / raw_rate:.2f}")
    # the goal is held against the faster of the two raw reads
    ratio = agg_rate / max(raw_rate, wire_rate)
    verdict = "met" if ratio >= GOAL else "MISSED"
    print(f"ratio aggregation / fastest raw read: {ratio:.2f} (goal >= {GOAL}): {verdict}")


if __name__ == "__main__":
    main()
