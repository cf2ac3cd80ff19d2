"""Write-sharded index keys: a hot key value (``POSTING#READY``, ``QUEUED#SMS``) spread
over N partitions as ``{value}#{shard:02d}``, and the reads that go over every shard.

An item's shard is a hash of its own id, so every writer computes it without a read and
the item stays in one shard for its life. N only grows (readers read shards 0 to N-1: an
item written under a larger N would be missed after N shrank).

A partition of a DynamoDB table or index takes about 1,000 writes and 3,000 reads a
second; with N shards a key takes N times that (docs/capacity.md).
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pynamodb.attributes import Attribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

T = TypeVar("T")

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Shared by every sharded read of the process (a thread waits on the network, not the
    CPU); one per process id, as a forked worker has none of its parent's threads. Fewer
    threads than botocore's 10 pooled connections a client, so that none is opened and
    thrown away per call."""
    pid = os.getpid()
    pool = _pools.get(pid)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(pid)
            if pool is None:
                pool = _pools[pid] = ThreadPoolExecutor(8, thread_name_prefix="ddb-shards")
    return pool


def shard_of(item_id: str, shards: int) -> int:
    return zlib.crc32(item_id.encode()) % shards


def shard_key(value: str, item_id: str, shards: int) -> str:
    """``value`` in the shard of ``item_id``."""
    return f"{value}#{shard_of(item_id, shards):02d}"


def shard_keys(value: str, shards: int) -> list[str]:
    """Every shard of ``value``, in shard order."""
    return [f"{value}#{shard:02d}" for shard in range(shards)]


def in_parallel(fn: Callable[[str], T], keys: Iterable[str]) -> list[T]:
    """``fn(key)`` for every key, at once on the shared pool, in the keys' order; the first
    error is raised once all have finished (none is left running behind the caller)."""
    results = in_parallel_settled(fn, keys)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def in_parallel_settled(fn: Callable[[T], object], args: Iterable[T]) -> list:
    """``fn(arg)`` for every arg at once on the shared pool, in the args' order: each
    result, or the exception it raised (the caller decides what an error means)."""

    def settled(arg):
        try:
            return fn(arg)
        except Exception as exc:  # handed to the caller
            return exc

    args = list(args)
    if len(args) <= 1:
        return [settled(arg) for arg in args]
    return list(_pool().map(settled, args))


def in_parallel_begun(fn: Callable[[T], object], args: Iterable[T]) -> Callable[[], list]:
    """:func:`in_parallel` begun now and ended later, so that the caller works meanwhile:
    ``fn(arg)`` for every arg submitted to the shared pool; the call returned waits for all
    of them and returns their results in the args' order, or raises the first error once
    all have finished."""
    futures = [_pool().submit(fn, arg) for arg in args]

    def end() -> list:
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # raised below, once every call has finished
                results.append(exc)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    return end


DONE = "done"  # a shard with nothing more to read, in a merged page's state


def merged_page(
    *,
    fetch: Callable[[str, dict | None, int], tuple[list[T], dict | None]],
    keys: list[str],
    state: dict[str, dict | str | None] | None,
    limit: int,
    order: Callable[[T], tuple],
    reverse: bool,
    last_key: Callable[[T], dict],
) -> tuple[list[T], dict[str, dict | str | None] | None]:
    """One page of ``limit`` items over every shard, in ``order``: each shard's next
    ``limit`` items are read (in parallel), merged, and the first ``limit`` kept. ``state``
    holds each shard's position (its DynamoDB start key, None to start, ``DONE`` when read
    out); the state for the next page is returned, or None when nothing follows.
    ``fetch(key, start, limit)`` returns up to ``limit`` items and the key after them (None
    at the end); ``last_key(item)`` is the start key that continues after ``item``."""
    state = dict(state) if state else dict.fromkeys(keys)
    open_keys = [key for key in keys if state.get(key) != DONE]
    fetched = dict(
        zip(
            open_keys,
            in_parallel(lambda key: fetch(key, state.get(key), limit), open_keys),
            strict=True,
        )
    )
    merged = sorted(
        ((item, key) for key, (items, _) in fetched.items() for item in items),
        key=lambda pair: order(pair[0]),
        reverse=reverse,
    )
    page = merged[:limit]
    for key, (items, after) in fetched.items():
        used = [item for item, from_key in page if from_key == key]
        if len(used) == len(items):
            state[key] = after if after else DONE  # all it gave is on this page
        elif used:
            state[key] = last_key(used[-1])
        # else: nothing of this shard on the page, it starts where it stood
    more = any(state.get(key) != DONE for key in keys)
    return [item for item, _ in page], state if more else None


def backfill(
    model: type[Model],
    *,
    missing: Attribute,
    actions_for: Callable[[Model], tuple[list[Action], Condition] | None],
    progress: Callable[[int], None] = lambda n: None,
) -> tuple[int, int]:
    """Give the items written before sharding their shard key: a Scan for the items
    without ``missing``, and for each an update with the actions and the condition that
    ``actions_for`` returns (None: leave it), also conditional on the key still missing,
    so a writer that moved the item meanwhile wins. Idempotent. Returns (items seen,
    items updated); ``progress`` is called with 1 for every item read."""
    seen = updated = 0
    for item in model.scan(filter_condition=missing.does_not_exist()):
        seen += 1
        progress(1)
        planned = actions_for(item)
        if planned is None:
            continue
        actions, condition = planned
        try:
            item.update(actions=actions, condition=condition & missing.does_not_exist())
        except PynamoDBException as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            continue
        updated += 1
    return seen, updated
