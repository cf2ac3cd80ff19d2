"""DynamoDB side of a backup: parallel consistent scans to files, batch writes back."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from dynamo import tables
from dynamo.connection import boto3_client

from . import BackupError

MODULUS = 2**256
BATCH = 25  # BatchWriteItem's limit
WRITE_ATTEMPTS = 10
TYPES = {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"}


class NullProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


Progress = Callable[[str, int | None], object]  # (description, total) -> a tqdm-like bar


def client():
    """Backups read and write a whole table: more patience with throttling than requests."""
    return boto3_client(retries=10)


def _error(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip(": ")
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- Canonical typed JSON -------------------------------------------------------------------


def to_json(value: dict) -> dict:
    """One attribute value as DynamoDB's wire JSON, with set members sorted."""
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": sorted(base64.b64encode(v).decode() for v in inner)}
    if kind in {"SS", "NS"}:
        return {kind: sorted(inner)}
    if kind == "M":
        return {"M": {k: to_json(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [to_json(v) for v in inner]}
    return {kind: inner}


def from_json(value: dict) -> dict:
    """The reverse of ``to_json``; raises ValueError for anything that is not typed JSON."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError("an attribute value is not one {type: value} pair")
    (kind, inner), *_ = value.items()
    if kind not in TYPES:
        raise ValueError(f"unknown attribute type {kind!r}")
    if kind == "B":
        return {"B": base64.b64decode(inner, validate=True)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v, validate=True) for v in inner]}
    if kind == "M":
        return {"M": {k: from_json(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [from_json(v) for v in inner]}
    if kind in {"S", "N"} and not isinstance(inner, str):
        raise ValueError(f"a {kind} value must be text")
    return {kind: inner}


def canonical(item: dict) -> str:
    return json.dumps(
        {name: to_json(value) for name, value in item.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def item_digest(line: str) -> int:
    return int.from_bytes(hashlib.sha256(line.encode()).digest(), "big")


@dataclass
class Tally:
    """Item count and the order-independent checksum of a table's items."""

    items: int = 0
    total: int = 0

    def add(self, line: str) -> None:
        self.items += 1
        self.total = (self.total + item_digest(line)) % MODULUS

    def merge(self, other: Tally) -> None:
        self.items += other.items
        self.total = (self.total + other.total) % MODULUS

    @property
    def checksum(self) -> str:
        return f"{self.total:064x}"


# --- Scans ----------------------------------------------------------------------------------


def _scan_segment(
    ddb, table: str, segment: int, segments: int, on_page: Callable[[list[str]], None]
) -> Tally:
    tally = Tally()
    kwargs = {
        "TableName": table,
        "Segment": segment,
        "TotalSegments": segments,
        "ConsistentRead": True,
    }
    while True:
        page = ddb.scan(**kwargs)
        lines = [canonical(item) for item in page.get("Items", [])]
        for line in lines:
            tally.add(line)
        on_page(lines)
        if "LastEvaluatedKey" not in page:
            return tally
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def parallel_scan(
    table: str,
    *,
    segments: int,
    on_page: Callable[[list[str]], None] = lambda lines: None,
) -> Tally:
    """Every item of ``table`` read once with ConsistentRead, ``segments`` Scans at a time."""
    ddb = client()
    total = Tally()
    try:
        with ThreadPoolExecutor(max_workers=segments) as pool:
            futures = [
                pool.submit(_scan_segment, ddb, table, segment, segments, on_page)
                for segment in range(segments)
            ]
            for future in futures:
                total.merge(future.result())
    except (BotoCoreError, ClientError) as exc:
        raise BackupError(f"scan of DynamoDB table {table} failed: {_error(exc)}") from None
    return total


def approximate_count(table: str) -> int | None:
    try:
        return int(client().describe_table(TableName=table)["Table"].get("ItemCount", 0)) or None
    except (BotoCoreError, ClientError):
        return None


def export_table(table: str, path: Path, *, segments: int, progress: Progress) -> Tally:
    """Write every item of ``table`` to ``path`` (gzip, one canonical item per line)."""
    lock = threading.Lock()
    bar = progress(table, approximate_count(table))
    with gzip.open(path, "wt", encoding="utf-8") as out:

        def on_page(lines: list[str]) -> None:
            if not lines:
                return
            with lock:
                out.write("".join(f"{line}\n" for line in lines))
                bar.update(len(lines))

        try:
            return parallel_scan(table, segments=segments, on_page=on_page)
        finally:
            bar.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- Reading a backup file --------------------------------------------------------------------


def read_items(path: Path, key_names: list[str]) -> Iterator[tuple[str, dict]]:
    """(canonical line, item for the API) for every line; BackupError names a bad line."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    raw = json.loads(line)
                    if not isinstance(raw, dict):
                        raise ValueError("not a JSON object")
                    item = {name: from_json(value) for name, value in raw.items()}
                    missing = [k for k in key_names if k not in item]
                    if missing:
                        raise ValueError(f"no key attribute {', '.join(missing)}")
                except (ValueError, TypeError) as exc:
                    raise BackupError(
                        f"{path.parent.name}/{path.name} line {number} is not a DynamoDB "
                        f"item: {exc}"
                    ) from None
                yield canonical(item), item
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BackupError(f"{path.parent.name}/{path.name} cannot be read: {exc}") from None


def key_names(model: type[Model]) -> list[str]:
    return [
        attr.attr_name
        for attr in model.get_attributes().values()
        if attr.is_hash_key or attr.is_range_key
    ]


def tally_file(path: Path, model: type[Model]) -> Tally:
    tally = Tally()
    for line, _ in read_items(path, key_names(model)):
        tally.add(line)
    return tally


# --- Restoring ---------------------------------------------------------------------------------


def table_has_items(table: str) -> bool | None:
    """True or False; None when the table does not exist."""
    ddb = client()
    try:
        page = ddb.scan(TableName=table, Limit=1, ConsistentRead=True)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise BackupError(f"DynamoDB table {table}: {_error(exc)}") from None
    except BotoCoreError as exc:
        raise BackupError(f"DynamoDB is unreachable: {_error(exc)}") from None
    return bool(page.get("Items"))


def empty_table(model: type[Model]) -> None:
    ddb = client()
    keys = key_names(model)
    table = model.Meta.table_name
    kwargs = {
        "TableName": table,
        "ProjectionExpression": ", ".join(f"#k{i}" for i in range(len(keys))),
        "ExpressionAttributeNames": {f"#k{i}": k for i, k in enumerate(keys)},
        "ConsistentRead": True,
    }
    while True:
        page = ddb.scan(**kwargs)
        deletes = [{"DeleteRequest": {"Key": key}} for key in page.get("Items", [])]
        for start in range(0, len(deletes), BATCH):
            _write_batch(ddb, table, deletes[start : start + BATCH])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _write_batch(ddb, table: str, requests: list[dict]) -> int:
    """One BatchWriteItem, its unprocessed requests retried with backoff and jitter."""
    pending = requests
    for attempt in range(WRITE_ATTEMPTS):
        response = ddb.batch_write_item(RequestItems={table: pending})
        pending = response.get("UnprocessedItems", {}).get(table, [])
        if not pending:
            return len(requests)
        time.sleep(min(5.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise BackupError(
        f"DynamoDB kept {len(pending)} writes to {table} unprocessed after "
        f"{WRITE_ATTEMPTS} attempts (throttled); nothing more was written"
    )


def _batches(items: Iterator[tuple[str, dict]]) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for _, item in items:
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def import_table(
    model: type[Model], path: Path, *, workers: int, progress: Progress, total: int
) -> None:
    """Create the table from the model (indexes, TTL) and write the file's items verbatim.

    Batch writes are right here, unlike in the application: the target was checked empty,
    and a put repeated by a retry writes the same item again."""
    table = model.Meta.table_name
    ddb = client()
    bar = progress(table, total)
    in_flight = workers * 4
    try:
        tables.ensure_table(model)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = set()
            for batch in _batches(read_items(path, key_names(model))):
                futures.add(pool.submit(_write_batch, ddb, table, batch))
                if len(futures) >= in_flight:
                    done, futures = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        bar.update(future.result())
            for future in futures:
                bar.update(future.result())
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        raise BackupError(f"writing DynamoDB table {table} failed: {_error(exc)}") from None
    finally:
        bar.close()
