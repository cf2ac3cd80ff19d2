"""core.batching: what many threads add in the same moments is flushed together, by one
thread of the process, every item once; a window of 0 flushes in the caller; a failing flush
is logged and the batcher goes on; a forked child flushes its own items, not its parent's."""

import os
import threading
import time

from core.batching import Batcher
from tests.concurrency import in_threads


def _collecting(window_s: float, max_batch: int = 100):
    flushed: list[list[int]] = []
    callers: list[str] = []

    def flush(items):
        callers.append(threading.current_thread().name)
        flushed.append(list(items))

    return Batcher(flush, window_s=window_s, max_batch=max_batch), flushed, callers


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_items_added_at_once_are_flushed_together_each_once_by_the_batcher_thread():
    batcher, flushed, callers = _collecting(window_s=0.05)
    in_threads(*[lambda n=n: batcher.add(n) for n in range(40)], raise_errors=True)
    _wait_for(lambda: sum(map(len, flushed)) == 40)
    assert sorted(item for batch in flushed for item in batch) == list(range(40))
    assert len(flushed) < 40 / 4  # together, not one flush an item
    assert set(callers) == {"batcher"}


def test_a_batch_is_at_most_max_batch_items():
    batcher, flushed, _ = _collecting(window_s=0.05, max_batch=7)
    for n in range(30):
        batcher.add(n)
    _wait_for(lambda: sum(map(len, flushed)) == 30)
    assert max(map(len, flushed)) <= 7
    assert [item for batch in flushed for item in batch] == list(range(30))


def test_items_after_a_flush_are_flushed_in_a_later_one():
    batcher, flushed, _ = _collecting(window_s=0.01)
    batcher.add(1)
    _wait_for(lambda: flushed == [[1]])
    batcher.add(2)
    _wait_for(lambda: flushed == [[1], [2]])


def test_a_window_of_zero_flushes_in_the_callers_thread_at_once():
    batcher, flushed, callers = _collecting(window_s=0)
    batcher.add(1)
    assert flushed == [[1]]
    assert callers == [threading.current_thread().name]


def test_a_failing_flush_is_logged_and_the_batcher_goes_on(caplog):
    seen: list[list[int]] = []

    def flush(items):
        seen.append(list(items))
        if items == [1]:
            raise ConnectionError("broker down")

    batcher = Batcher(flush, window_s=0.01)
    batcher.add(1)
    _wait_for(lambda: "could not hand on 1 item(s)" in caplog.text)
    batcher.add(2)
    _wait_for(lambda: seen == [[1], [2]])


def test_drain_flushes_what_waits_in_the_callers_thread():
    batcher, flushed, callers = _collecting(window_s=60)  # the thread would wait a minute
    batcher.add(1)
    batcher.add(2)
    batcher.drain()
    assert flushed == [[1, 2]]
    assert callers == [threading.current_thread().name]


def test_a_forked_child_flushes_its_own_items_with_a_thread_of_its_own():
    read_end, write_end = os.pipe()
    finished = threading.Event()

    def flush(items):
        if not finished.is_set():  # the parent's item, flushed at its exit, goes nowhere
            os.write(write_end, (",".join(map(str, items)) + ";").encode())

    batcher = Batcher(flush, window_s=60)  # the parent's item waits: never the child's
    batcher.add("parent")
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            batcher.window_s = 0.01
            batcher.add("child")
            time.sleep(0.5)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    os.close(write_end)
    written = os.read(read_end, 1000).decode()
    os.close(read_end)
    finished.set()
    assert written == "child;"
