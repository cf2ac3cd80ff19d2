"""Real concurrency for the tests of races: calls at the same moment, each in a thread of
its own with a database connection of its own (so the test needs ``transaction=True``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


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
