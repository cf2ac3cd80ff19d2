"""Real concurrency for the tests of races: work at the same moment, each in a thread of
its own with a database connection of its own (so the test needs ``transaction=True``):
the races the job guard, the outbox's relays, the approvers and the dispatchers survive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

from core.outbox import outbox_relay


def in_threads(*calls: Callable[[], object]) -> list:
    """Run the calls at the same moment; each one's result, or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def at_once(work: Callable[[], Any], *, threads: int = 2, timeout: float = 120) -> list[Any]:
    """Run ``work()`` in ``threads`` threads released together; returns what each returned.
    Each thread closes its own database connection; an error in one is raised here."""
    start = threading.Barrier(threads)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(work())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout)
    if errors:
        raise errors[0]
    return results


def relay_all(topic: str, *, limit: int, **kwargs) -> int:
    """The outbox relay for ``topic``, batch after batch of ``limit`` until none is left;
    returns how many this caller delivered."""
    total = 0
    while delivered := outbox_relay(topics=[topic], limit=limit, **kwargs)[topic]:
        total += delivered
    return total
