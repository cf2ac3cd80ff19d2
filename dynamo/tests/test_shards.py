"""dynamo.shards: parallel calls on the shared pool."""

import threading

import pytest

from dynamo.shards import in_parallel_begun


def test_begun_calls_run_while_the_caller_works_and_end_in_order():
    release = threading.Event()

    def call(n: int) -> int:
        assert release.wait(5)
        return n * 10

    end = in_parallel_begun(call, [1, 2, 3])
    release.set()  # the caller got here while every call was still waiting
    assert end() == [10, 20, 30]


def test_the_first_error_is_raised_once_every_call_has_finished():
    finished = []

    def call(n: int) -> int:
        if n == 1:
            raise ValueError("first")
        threading.Event().wait(0.2)
        finished.append(n)
        return n

    end = in_parallel_begun(call, [1, 2, 3])
    with pytest.raises(ValueError, match="first"):
        end()
    assert sorted(finished) == [2, 3]  # none left running behind the caller
