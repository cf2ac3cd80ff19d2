"""Item sizes of every DynamoDB table and index, measured on stored items: the input of
the capacity plan (docs/capacity.md).

Run it from the project folder against a system that has posted payments, presented
mandates and sent notifications (the development data after ``bench/load.py``, say):

    .venv/bin/python bench/item_sizes.py [--sample 2000]

For each table it reads up to ``--sample`` items (a Scan) and prints the items' size as
DynamoDB bills it (attribute names and values in UTF-8 bytes; a number about one byte a
two digits plus one) at the median, p95 and max, and the write units one put of the p95
item costs (1 WCU a 1 KB, rounded up), and for each index the size of an index entry (the
projected item plus 100 bytes).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from dynamo import registry  # noqa: E402
from dynamo.connection import boto3_client  # noqa: E402

INDEX_OVERHEAD = 100  # bytes DynamoDB adds to each index entry


def value_size(value: dict) -> int:
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = len(raw.lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(raw)
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if kind in {"SS", "NS", "BS"}:
        return sum(value_size({kind[0]: v}) for v in raw)
    raise ValueError(kind)


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def percentile(values: list[int], pct: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    client = boto3_client()
    print(f"{'table / index':<40} {'items':>6} {'p50 B':>6} {'p95 B':>6} {'max B':>6} {'WCU':>4}")
    for model in registry.models():
        table = model.Meta.table_name
        sizes, items = [], []
        request = {"TableName": table, "Limit": min(args.sample, 1000)}
        while len(items) < args.sample:
            page = client.scan(**request)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        sizes = [item_size(i) for i in items[: args.sample]]
        if not sizes:
            print(f"{table:<40} {0:>6}")
            continue
        p95 = percentile(sizes, 95)
        print(
            f"{table:<40} {len(sizes):>6} {statistics.median(sizes):>6.0f} {p95:>6} "
            f"{max(sizes):>6} {math.ceil(p95 / 1024):>4}"
        )
        schema = model._get_schema()
        for index in schema["global_secondary_indexes"]:
            key = index["key_schema"][0]["AttributeName"]
            entries = [item_size(i) + INDEX_OVERHEAD for i in items if key in i]
            if not entries:
                continue
            p95 = percentile(entries, 95)
            print(
                f"  {index['index_name']:<38} {len(entries):>6} "
                f"{statistics.median(entries):>6.0f} {p95:>6} {max(entries):>6} "
                f"{math.ceil(p95 / 1024):>4}"
            )
    print(f"\n{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
