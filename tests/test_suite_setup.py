"""The suite's own machinery: the one thread helper of the race tests, and the stores of
each pytest-xdist worker (config/settings_test.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from django.conf import settings

from tests.concurrency import in_threads


def test_in_threads_starts_the_calls_together_and_returns_their_results_in_order():
    inside = threading.Barrier(3, timeout=10)  # passes only with all three calls inside

    def call(value):
        def run():
            inside.wait()
            return value

        return run

    assert in_threads(call("a"), call("b"), call("c")) == ["a", "b", "c"]


def test_in_threads_returns_an_exception_as_its_calls_result_or_raises_it_when_asked():
    def fails():
        raise ValueError("no")

    results = in_threads(fails, lambda: 7)
    assert isinstance(results[0], ValueError) and results[1] == 7
    with pytest.raises(ValueError, match="no"):
        in_threads(fails, lambda: 7, raise_errors=True)


def test_in_threads_fails_when_a_call_outlives_the_timeout():
    release = threading.Event()
    try:
        with pytest.raises(AssertionError, match=r"1 of 2 threads still running after 0\.2 s"):
            in_threads(lambda: release.wait(30), lambda: 1, timeout=0.2)
    finally:
        release.set()


def _test_settings(**env: str) -> subprocess.CompletedProcess:
    """``config.settings_test`` loaded in a new process with ``env`` on top of ours."""
    script = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.REDIS_URL.rsplit('/', 1)[1], settings.DYNAMODB_TABLE_PREFIX)"
    )
    environ = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_xdist_worker_has_its_redis_database_and_table_prefix():
    assert _test_settings(TEST_REDIS_DB="6,15", TEST_DYNAMODB_PREFIX="p_").stdout.split() == [
        "6",
        "p_",
    ]
    for worker, db in (("gw0", "6"), ("gw1", "15")):
        run = _test_settings(
            TEST_REDIS_DB="6,15", TEST_DYNAMODB_PREFIX="p_", PYTEST_XDIST_WORKER=worker
        )
        assert run.stdout.split() == [db, f"p_{worker}_"], run.stderr


def test_a_worker_without_a_redis_database_of_its_own_is_refused_in_one_line():
    run = _test_settings(TEST_REDIS_DB="6", PYTEST_XDIST_WORKER="gw1")
    assert run.returncode != 0
    assert (
        "TEST_REDIS_DB names 1 Redis database(s) (6): xdist worker gw1 needs one of its own; "
        "name one more, comma-separated"
    ) in run.stderr
