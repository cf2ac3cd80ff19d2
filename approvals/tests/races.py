"""A change and a decision racing, in two threads with their own database connections
(for ``transaction=True`` tests of the four-eyes rule)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connection, transaction

from approvals.exceptions import MakerCannotCheck

HOLD_SECONDS = 0.5


def change_racing_decision(change: Callable[[], object], decide: Callable[[], object]) -> dict:
    """Run ``change`` in a transaction kept open a moment after it is done, and ``decide``
    in another thread as soon as it is done: the decision then waits for the row lock the
    change holds. Returns ``{"change": "done", "decide": "approved" | "refused"}``."""
    changed = threading.Event()
    results: dict[str, str] = {}

    def run_change() -> None:
        try:
            with transaction.atomic():
                change()
                changed.set()
                time.sleep(HOLD_SECONDS)  # the decision is now waiting for the row
            results["change"] = "done"
        finally:
            changed.set()
            connection.close()

    def run_decide() -> None:
        try:
            changed.wait(10)
            decide()
            results["decide"] = "approved"
        except MakerCannotCheck:
            results["decide"] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=run_change), threading.Thread(target=run_decide)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results
