"""A process's small batches: what many requests hand over in the same moments, handed on
together by one thread.

``Batcher(flush, window_s)``: ``add(item)`` returns at once; a thread of the process (started
at the first ``add`` after a fork, so each gunicorn or Celery child has its own) waits until
an item arrives, lets ``window_s`` pass for more to join it, and calls ``flush(items)`` with
up to ``max_batch`` at a time. At exit what is waiting is flushed. A window of 0 flushes in
the caller's thread, item by item (no thread at all).

For work that is safe to lose: ``flush`` is the fast path to something a periodic job does
anyway (the payments' posting publish: the queue item in DynamoDB is the truth and the
sweep posts what a killed process never published). ``flush``'s exceptions are logged.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(
        self, flush: Callable[[list[T]], None], *, window_s: float, max_batch: int = 100
    ) -> None:
        self._flush = flush
        self.window_s = window_s
        self.max_batch = max_batch
        self._items: list[T] = []
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._pid: int | None = None

    def add(self, item: T) -> None:
        if self.window_s <= 0:
            self._hand_on([item])
            return
        with self._lock:
            if self._pid != os.getpid():  # the first item of this process (after a fork)
                self._start()
            self._items.append(item)
        self._arrived.set()

    def drain(self) -> None:
        """Flush what waits now, in the caller's thread (at exit; tests)."""
        with self._lock:
            items, self._items = self._items, []
        for start in range(0, len(items), self.max_batch):
            self._hand_on(items[start : start + self.max_batch])

    def _start(self) -> None:
        first_in_process = self._pid is None
        self._pid = os.getpid()
        self._items = []  # a parent's items are the parent's to flush
        self._arrived = threading.Event()
        threading.Thread(target=self._run, name="batcher", daemon=True).start()
        if first_in_process:  # registered once: a forked child inherits the registration
            atexit.register(self.drain)

    def _run(self) -> None:
        arrived = self._arrived
        while True:
            arrived.wait()
            time.sleep(self.window_s)  # let the moment's other items join
            arrived.clear()
            self.drain()

    def _hand_on(self, items: list[T]) -> None:
        try:
            self._flush(items)
        except Exception:
            logger.exception("could not hand on %d item(s); the periodic job does", len(items))
