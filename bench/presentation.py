"""The daily mandate presentation of 100,000 due instalments, against the raw DynamoDB write
rate of the same execution items, and the application of their results.

Run it from the project folder (the local services must be running), on a development
database of its own (the benchmark adds ``--instalments`` loans to it each run; drop it
after):

    DATABASE_URL=postgres://.../dev_x REDIS_URL=redis://.../N \\
        .venv/bin/python bench/presentation.py [--instalments 100000] [--branches 400]
                                               [--threads 8] [--results N] [--profile]

DynamoDB: a DynamoDB Local of its own that keeps its data in memory (port 28101, folder
``.local/bench``; ``BENCH_DYNAMODB_ENDPOINT`` points it at another), table prefix
``bench_present_``; the tables are made anew at the start of each run.

Set-up (bulk, not measured): ``--branches`` branches (``BP001``...) in an area of their own,
two banking partners on the sandbox adapter, and ``--instalments`` customers, active loans,
instalments due on the run date, ACTIVE mandates (with their UMRN) spread over the branches
and the partners, and their scheduled presentations; every second mandate's account has a
sandbox bounce rule (NACH return 04, insufficient funds: retryable, charged). Presentations
of earlier runs still open are stopped, and the run date's run and batches removed.

Then, in the same run:
- raw PutItem: the very execution items the presentation writes (as they end, PRESENTED;
  under ids of their own, ``raw-...``), one conditional ``PutItem`` each
  (``attribute_not_exists``, as presenting needs), ``--threads`` threads of boto3;
- raw BatchWriteItem: the same items 25 a request (no condition), ``--threads`` threads;
- raw TransactWriteItems: the same items 100 a request, each with the condition of PutItem
  (the fastest write with the guarantee presenting needs, and the way the presentation
  writes them), ``--threads`` threads;
  ``--threads`` is 8 by default: the presentation writes on the shared pool of 8 threads of
  ``dynamo.shards``; the table is then made anew (the presentation starts on an empty
  table, as the raw writes did, and DynamoDB Local keeps fewer items in memory);
- presentation: ``mandates.services.mandates_present_due`` for the run date, as the daily
  task runs it (the run-once guard, both partners' batches, the sandbox's hand-over);
- results: the sandbox partner's verdicts (half successes, half bounces) applied with
  ``execution_result_apply`` (the service of the results API, a response file and the
  sandbox), ``--threads`` threads: a success becomes a NACH payment through ingestion, a
  bounce raises its charge and re-schedules the presentation. ``--results N`` applies only
  the first N (alternately a success and a bounce).

It prints the machine (CPU count, load average), each rate, the presentation's ratio
against each raw write, and the results' rate with p50/p95 of one result. The goal (0.7)
is judged against the raw conditional TransactWriteItems of the same items, 100 a call,
the same threads: the honest comparison, as presenting needs each write conditional (a
resumed run must present nothing twice). The unconditional BatchWriteItem is printed
for reference: it could not give that guarantee. It exits with status 1 when a count is
wrong (the run's, the presentations', the execution items', the results', the charges',
the payments').
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import pstats
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
os.environ["DYNAMODB_TABLE_PREFIX"] = "bench_present_"  # never the development tables
BENCH_DDB_PORT = "28101"

from bench.local_dynamodb import start_in_memory  # noqa: E402

os.environ["DYNAMODB_ENDPOINT"] = os.environ.get("BENCH_DYNAMODB_ENDPOINT") or (
    start_in_memory(port=BENCH_DDB_PORT)
)
os.environ.setdefault("DYNAMODB_READ_TIMEOUT", "120")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from tqdm import tqdm  # noqa: E402

from accounts.models import Area, Branch, Region, User  # noqa: E402
from bench.figures import machine, percentile  # noqa: E402
from core.clock import iso  # noqa: E402
from core.models import JobRun  # noqa: E402
from dynamo.connection import boto3_client  # noqa: E402
from dynamo.tables import delete_all, delete_table, ensure_all, ensure_table  # noqa: E402
from loans.models import (  # noqa: E402
    BankingPartner,
    Customer,
    Instalment,
    LoanAccount,
    LoanCharge,
    LoanProduct,
)
from mandates.ddb_models import DUE_DATE_SHARDS, MandateExecutionItem  # noqa: E402
from mandates.models import (  # noqa: E402
    ExecutionResult,
    Mandate,
    PresentationBatch,
    SandboxBounceRule,
    ScheduledPresentation,
)
from mandates.sandbox import sandbox_results  # noqa: E402
from mandates.services import (  # noqa: E402
    PRESENTATION_JOB,
    execution_id_for,
    execution_result_apply,
    mandates_present_due,
)

GOAL = 0.7
RUN_DATE = datetime.date(2026, 3, 5)
EMI = Decimal("4321.50")
BOUNCE_CODE = "04"  # insufficient funds: retryable, charged
PARTNERS = (("bench-a", "BENCH0000A1"), ("bench-b", "BENCH0000B1"))
P = ScheduledPresentation.Status


# --- set-up ---------------------------------------------------------------------------------


def bench_branches(count: int) -> list[Branch]:
    region, _ = Region.objects.get_or_create(code="BPRS", defaults={"name": "Bench presentation"})
    area, _ = Area.objects.get_or_create(
        code="BPRS", defaults={"name": "Bench presentation", "region": region}
    )
    Branch.objects.bulk_create(
        [
            Branch(
                code=f"BP{n:03d}",
                name=f"Bench presentation {n}",
                area=area,
                state="Maharashtra",
                is_active=False,  # the daily jobs of bin/run leave them alone
            )
            for n in range(1, count + 1)
        ],
        ignore_conflicts=True,
    )
    return list(Branch.objects.filter(area=area).order_by("code")[:count])


def bench_partners() -> list[BankingPartner]:
    partners = []
    for code, ifsc in PARTNERS:
        partner, _ = BankingPartner.objects.get_or_create(
            code=code,
            defaults={"name": f"Bench {code}", "ifsc": ifsc, "nach_utility_code": ifsc[:8]},
        )
        partners.append(partner)
    return partners


def forget_earlier_runs(partners: list[BankingPartner]) -> None:
    """Stop what earlier runs left open (re-presentations of bounces), and remove the run
    date's run and batches, so this run presents exactly its own instalments."""
    ScheduledPresentation.objects.filter(
        mandate__banking_partner__in=partners, status__in=[P.SCHEDULED, P.RETRY_SCHEDULED]
    ).update(status=P.STOPPED)
    JobRun.objects.filter(name=PRESENTATION_JOB, key=RUN_DATE.isoformat()).delete()
    PresentationBatch.objects.filter(run_date=RUN_DATE).delete()


def set_up(count: int, branches: list[Branch], partners: list[BankingPartner]) -> list[int]:
    """``count`` due instalments with active mandates; their presentations' ids."""
    tag = int(time.time()) % 1_000_000  # this run's numbers: earlier runs' stay unique
    product, _ = LoanProduct.objects.get_or_create(
        code="BPRS",
        defaults={
            "name": "Bench presentation",
            "interest_rate": Decimal("18.00"),
            "min_tenure_months": 6,
            "max_tenure_months": 60,
        },
    )
    creator, _ = User.objects.get_or_create(username="bench.presentation")
    size = 5000

    def branch_of(n: int) -> Branch:
        return branches[n % len(branches)]

    steps = tqdm(total=6, desc="set-up", unit=" tables")
    customers = Customer.objects.bulk_create(
        (
            Customer(
                customer_number=f"BPC{tag:06d}{n:07d}",
                name=f"Bench payer {n}",
                mobile="9876543210",
                pan="ABCDE1234F",
                branch=branch_of(n),
            )
            for n in range(count)
        ),
        batch_size=size,
    )
    steps.update()
    loans = LoanAccount.objects.bulk_create(
        (
            LoanAccount(
                loan_number=f"BPL{tag:06d}{n:07d}",
                customer=customers[n],
                product=product,
                branch=branch_of(n),
                sanctioned_amount=Decimal("100000.00"),
                disbursed_amount=Decimal("100000.00"),
                interest_rate=Decimal("18.00"),
                tenure_months=24,
                emi_amount=EMI,
                due_day=RUN_DATE.day,
                disbursed_on=RUN_DATE - datetime.timedelta(days=30),
                status=LoanAccount.Status.ACTIVE,
                outstanding_principal=Decimal("100000.00"),
                next_due_amount=EMI,
            )
            for n in range(count)
        ),
        batch_size=size,
    )
    steps.update()
    instalments = Instalment.objects.bulk_create(
        (
            Instalment(
                loan=loans[n],
                number=1,
                due_date=RUN_DATE,
                principal_due=Decimal("2821.50"),
                interest_due=Decimal("1500.00"),
            )
            for n in range(count)
        ),
        batch_size=size,
    )
    steps.update()
    mandates = Mandate.objects.bulk_create(
        (
            Mandate(
                loan=loans[n],
                payer=customers[n],
                bank_name="Bench Bank",
                account_number=f"{tag:06d}{n:09d}",
                ifsc=partners[n % 2].ifsc,
                max_amount=Decimal("10000.00"),
                start_date=RUN_DATE - datetime.timedelta(days=30),
                end_date=RUN_DATE + datetime.timedelta(days=730),
                banking_partner=partners[n % 2],
                umrn=f"BPRS{tag:06d}{n:07d}",
                status=Mandate.Status.ACTIVE,
                created_by=creator,
            )
            for n in range(count)
        ),
        batch_size=size,
    )
    steps.update()
    SandboxBounceRule.objects.bulk_create(
        (
            SandboxBounceRule(account_number=mandates[n].account_number, return_code=BOUNCE_CODE)
            for n in range(1, count, 2)
        ),
        batch_size=size,
    )
    steps.update()
    rows = ScheduledPresentation.objects.bulk_create(
        (
            ScheduledPresentation(
                mandate=mandates[n],
                instalment=instalments[n],
                due_date=RUN_DATE,
                presentation_date=RUN_DATE,
                amount=EMI,
            )
            for n in range(count)
        ),
        batch_size=size,
    )
    steps.update()
    steps.close()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return [row.pk for row in rows]


# --- raw writes -----------------------------------------------------------------------------


def wire_items(presentation_ids: list[int], partners: list[BankingPartner]) -> list[dict]:
    """The execution items the presentation writes, as they end (PRESENTED), in DynamoDB's
    wire format, under ids of their own (``raw-...``) in the same table."""
    rows = (
        ScheduledPresentation.objects.filter(pk__in=presentation_ids)
        .select_related("mandate__loan", "mandate__banking_partner")
        .order_by("id")
    )
    now = iso(timezone.now())
    items = []
    for row in rows.iterator(chunk_size=5000):
        mandate, partner = row.mandate, row.mandate.banking_partner.code
        items.append(
            {
                "execution_id": {"S": "raw-" + execution_id_for(row, 1)},
                "mandate_id": {"S": str(mandate.pk)},
                "due_attempt": {"S": f"{row.due_date.isoformat()}#01"},
                "due_date_shard": {"S": f"{row.due_date.isoformat()}#{row.pk % DUE_DATE_SHARDS}"},
                "presentation_id": {"N": str(row.pk)},
                "loan_number": {"S": mandate.loan.loan_number},
                "branch_id": {"N": str(mandate.loan.branch_id)},
                "partner_code": {"S": partner},
                "batch_reference": {"S": f"{partner.upper()}-{RUN_DATE:%Y%m%d}"},
                "umrn": {"S": mandate.umrn},
                "due_date": {"S": row.due_date.isoformat()},
                "attempt": {"N": "1"},
                "amount_paise": {"N": str(int(row.amount * 100))},
                "status": {"S": "PRESENTED"},
                "created_at": {"S": now},
                "presented_at": {"S": now},
            }
        )
    return items


def in_threads(
    work: list, threads: int, call: Callable[[object], None], desc: str
) -> tuple[float, list[float]]:
    """Each element of ``work`` through ``call`` from ``threads`` threads: wall seconds, and
    each call's seconds."""
    lock = threading.Lock()
    latencies: list[float] = []
    position = iter(work)

    def worker(bar) -> None:
        mine = []
        try:
            while True:
                with lock:
                    element = next(position, None)
                if element is None:
                    break
                began = time.perf_counter()
                call(element)
                mine.append(time.perf_counter() - began)
                bar.update(len(element) if isinstance(element, list) else 1)
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    total = sum(len(e) if isinstance(e, list) else 1 for e in work)
    with tqdm(total=total, desc=desc, unit=" items") as bar:
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(worker, bar) for _ in range(threads)]:
                future.result()
        return time.perf_counter() - started, latencies


def raw_put(items: list[dict], threads: int) -> float:
    client, table = boto3_client(), MandateExecutionItem.Meta.table_name

    def put(item: dict) -> None:
        client.put_item(
            TableName=table, Item=item, ConditionExpression="attribute_not_exists(execution_id)"
        )

    seconds, _ = in_threads(items, threads, put, "raw PutItem")
    return seconds


def raw_batch(items: list[dict], threads: int) -> float:
    client, table = boto3_client(), MandateExecutionItem.Meta.table_name
    again = [{**item, "execution_id": {"S": "b" + item["execution_id"]["S"]}} for item in items]

    def write(chunk: list[dict]) -> None:
        requests = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        while requests:
            requests = client.batch_write_item(RequestItems=requests)["UnprocessedItems"]

    chunks = [again[i : i + 25] for i in range(0, len(again), 25)]
    seconds, _ = in_threads(chunks, threads, write, "raw BatchWriteItem")
    return seconds


def raw_transact(items: list[dict], threads: int) -> float:
    client, table = boto3_client(), MandateExecutionItem.Meta.table_name
    again = [{**item, "execution_id": {"S": "t" + item["execution_id"]["S"]}} for item in items]

    def write(chunk: list[dict]) -> None:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(execution_id)",
                    }
                }
                for item in chunk
            ]
        )

    chunks = [again[i : i + 100] for i in range(0, len(again), 100)]
    seconds, _ = in_threads(chunks, threads, write, "raw TransactWriteItems")
    return seconds


# --- checks ---------------------------------------------------------------------------------


def executions_by_status() -> dict[str, int]:
    """The presentation's execution items (not the raw ones) by status."""
    client, table = boto3_client(), MandateExecutionItem.Meta.table_name
    counts: dict[str, int] = {}
    request = {
        "TableName": table,
        "ProjectionExpression": "execution_id, #s",
        "ExpressionAttributeNames": {"#s": "status"},
    }
    while True:
        page = client.scan(**request)
        for item in page["Items"]:
            if not item["execution_id"]["S"][0].isdigit():
                continue
            status = item["status"]["S"]
            counts[status] = counts.get(status, 0) + 1
        if "LastEvaluatedKey" not in page:
            return counts
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def check(label: str, got, wanted, wrong: list[str]) -> None:
    if got != wanted:
        wrong.append(f"{label}: {got}, expected {wanted}")


# --- the run --------------------------------------------------------------------------------


def apply_results(ids: list[int], partners, count: int, threads: int):
    rows = ScheduledPresentation.objects.filter(pk__in=ids).select_related("mandate").order_by("id")
    code_of = {p.pk: p.code for p in partners}
    pairs, partner_of = [], {}
    for row in rows.iterator(chunk_size=5000):
        execution_id = execution_id_for(row, row.attempts)
        pairs.append((execution_id, row.mandate.account_number))
        partner_of[execution_id] = code_of[row.mandate.banking_partner_id]
    verdicts = sandbox_results(pairs[:count])
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def apply(result: dict) -> None:
        outcome = execution_result_apply(partner_code=partner_of[result["execution_id"]], **result)
        with lock:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    seconds, latencies = in_threads(verdicts, threads, apply, "results")
    return verdicts, outcomes, seconds, latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instalments", type=int, default=100_000)
    parser.add_argument("--branches", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--results", type=int, default=None, help="apply only the first N")
    parser.add_argument(
        "--profile", action="store_true", help="the presentation under cProfile (slower)"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is known
    if args.instalments < 2 or args.branches < 1 or args.threads < 1:
        print("error: --instalments must be at least 2, --branches and --threads at least 1")
        return 2
    count = args.instalments
    results = count if args.results is None else min(args.results, count)

    delete_all()
    ensure_all()
    branches, partners = bench_branches(args.branches), bench_partners()
    forget_earlier_runs(partners)
    ids = set_up(count, branches, partners)
    items = wire_items(ids, partners)
    print(f"machine before: {machine()}")

    put_s = raw_put(items, args.threads)
    batch_s = raw_batch(items, args.threads)
    transact_s = raw_transact(items, args.threads)
    # the presentation starts on an empty table, and the checks read only its items
    delete_table(MandateExecutionItem)
    ensure_table(MandateExecutionItem)
    profile = cProfile.Profile() if args.profile else None
    started, cpu_started = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    run = mandates_present_due(run_date=RUN_DATE)
    present_s, present_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if profile:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    print(f"presentation: {present_s:.1f} s, {count / present_s:,.0f} instalments/s; {machine()}")

    wrong: list[str] = []
    check("run's presented count", run.counts.get("presented") if run else None, count, wrong)
    presented = ScheduledPresentation.objects.filter(pk__in=ids, status=P.PRESENTED).count()
    check("presentations PRESENTED", presented, count, wrong)
    check("execution items", executions_by_status(), {"PRESENTED": count}, wrong)

    verdicts, outcomes, results_s, latencies = apply_results(ids, partners, results, args.threads)
    print(f"machine after the results: {machine()}")
    bounces = sum(1 for v in verdicts if v["status"] == "BOUNCED")
    check("results applied", outcomes, {"applied": results}, wrong)
    recorded = ExecutionResult.objects.filter(presentation__in=ids).count()
    check("results recorded", recorded, results, wrong)
    statuses = executions_by_status()
    check(
        "execution items",
        statuses,
        {k: v for k, v in {"PRESENTED": count - results, "SUCCESS": results - bounces,
                           "BOUNCED": bounces}.items() if v},
        wrong,
    )  # fmt: skip
    charges = LoanCharge.objects.filter(
        loan__mandates__presentations__in=ids, kind=LoanCharge.Kind.BOUNCE
    ).count()
    check("bounce charges", charges, bounces, wrong)
    retries = ScheduledPresentation.objects.filter(pk__in=ids, status=P.RETRY_SCHEDULED).count()
    check("re-presentations scheduled", retries, bounces, wrong)

    put_rate, batch_rate, present_rate = count / put_s, count / batch_s, count / present_s
    transact_rate = count / transact_s
    ratio = present_rate / transact_rate
    print(
        f"{count:,} due instalments, {len(branches)} branches, {len(partners)} partners, "
        f"{args.threads} threads; {machine()}"
    )
    raws = (
        ("raw PutItem, conditional, 1 a call", put_s, put_rate),
        ("raw BatchWriteItem, no condition, 25 a call", batch_s, batch_rate),
        ("raw TransactWriteItems, conditional, 100 a call", transact_s, transact_rate),
    )
    for label, seconds, rate in raws:
        print(
            f"{label + ':':49} {seconds:8.1f} s {rate:8,.0f} items/s  "
            f"presentation/this {present_rate / rate:.2f}"
        )
    print(
        f"{'presentation:':49} {present_s:8.1f} s {present_rate:8,.0f} instalments/s  "
        f"(CPU of this process {present_cpu:.1f} s, {present_cpu / count * 1e6:.0f} µs an "
        "instalment)"
    )
    print(
        f"goal: presentation >= {GOAL} of the raw conditional TransactWriteItems of the same "
        f"items (100 a call, {args.threads} threads): {ratio:.2f}, "
        f"{'met' if ratio >= GOAL else 'MISSED'}"
    )
    print(
        f"results:            {results_s:8.1f} s  {results / results_s:8,.0f} results/s  "
        f"({results - bounces:,} successes, {bounces:,} bounces; one result p50 "
        f"{percentile(latencies, 50) * 1000:.1f} ms, p95 {percentile(latencies, 95) * 1000:.1f} ms)"
    )
    for line in wrong:
        print(f"WRONG COUNT {line}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
