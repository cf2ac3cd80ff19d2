"""Work run by several threads at once, each on its own database connection: the races the
outbox's relays, the approvers and the dispatchers must survive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

from core.outbox import outbox_relay


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
