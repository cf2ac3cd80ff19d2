"""Real concurrency for the tests of races: work at the same moment, each in a thread of
its own with a database connection of its own (so the test needs ``transaction=True``):
the races the job guard, the outbox's relays, the approvers and the dispatchers survive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection

from core.outbox import outbox_relay


def in_threads(
    *calls: Callable[[], Any], timeout: float = 120, raise_errors: bool = False
) -> list[Any]:
    """Run the calls at the same moment, each in a thread of its own (released together by
    a barrier, closing its own database connection at the end); returns each call's
    result in the order of the calls. A call's exception is its result, or, with
    ``raise_errors``, the first one is raised here. A thread still running after
    ``timeout`` seconds fails the test (rather than leaving a ``None`` result)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    raised: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:
            results[index] = exc
            raised.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = sum(thread.is_alive() for thread in threads)
    assert not hung, f"{hung} of {len(calls)} threads still running after {timeout} s"
    if raise_errors and raised:
        raise raised[0]
    return results


def relay_all(topic: str, *, limit: int, **kwargs) -> int:
    """The outbox relay for ``topic``, batch after batch of ``limit`` until none is left;
    returns how many this caller delivered."""
    total = 0
    while delivered := outbox_relay(topics=[topic], limit=limit, **kwargs)[topic]:
        total += delivered
    return total
