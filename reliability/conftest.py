"""Fixtures of the fault-injection suite: real processes that join the test run.

A subprocess joins the run through ``run_env()``: the pytest-django test database
(``DATABASE_URL``), this run's Redis database and DynamoDB endpoint, and, through the
``TEST_*`` variables of ``config/settings_test.py``, its DynamoDB table prefix, Celery
queue and cache key prefix. What it writes, the test sees, and the other way round.

- ``celery_workers``: real ``celery -A config worker`` processes (and a beat) that post,
  present and build exactly as in production. ``kill()`` SIGKILLs a worker's whole process
  group: no acknowledgement, no clean-up, its open Postgres transaction rolled back by the
  server. ``start()`` starts the next one. ``FAST_RECOVERY`` shortens the leases and the
  broker's visibility timeout (settings, production defaults otherwise) so that what a
  dead worker held is taken over in seconds rather than minutes.
  Any scenario that needs a worker to live through a fault can reuse it (the Redis
  restart, for one): ``celery_workers.start()``, restart Redis, then wait for the work to
  be done: the worker reconnects by itself; ``celery_workers.log_text()`` shows its log.
- ``app_server``: the application in gunicorn on a free port, with the same environment.
- ``row_locks``: row locks held from connections of their own, and who waits for them:
  how a test stops a worker at a known point of its work without a hook in the product.
- ``wait_until``: poll a condition with a deadline, failing with what was waited for.
- ``ledger_agrees``: the payments integrity check must report no difference.

Everything started is stopped when the test ends, and what is left on this run's queue
(also messages a killed worker had taken) is dropped, so each test's workers start clean.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

import psycopg
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the virtualenv's bin: celery, gunicorn
START_TIMEOUT = 60.0

# Settings of the started processes that make recovery quick (all in seconds).
FAST_RECOVERY = {
    "PAYMENTS_POSTING_LEASE_SECONDS": "5",
    "MANDATES_PRESENTATION_LEASE_SECONDS": "5",
    "RECONCILIATION_JOB_LEASE_SECONDS": "5",
    "MANDATES_SANDBOX_REPORT_DELAY_SECONDS": "1",
    # an unacknowledged task of a dead worker is delivered again after this; longer than
    # the leases, as in production (1 hour against 30 minutes), or the task would find
    # the dead run's claim still held and do nothing
    "TEST_CELERY_VISIBILITY_TIMEOUT": "10",
}


def run_env(**overrides: str) -> dict[str, str]:
    """The environment of a subprocess that shares this test run's stores."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    redis_db = urlparse(settings.REDIS_URL).path.lstrip("/") or "0"
    env = {
        **{name: value for name, value in os.environ.items() if name != "PYTEST_XDIST_WORKER"},
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "TEST_REDIS_DB": redis_db,
        "DYNAMODB_ENDPOINT": settings.DYNAMODB_ENDPOINT or "",
        "TEST_DYNAMODB_PREFIX": settings.DYNAMODB_TABLE_PREFIX,
        "TEST_CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "TEST_CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


def _wait_until(
    predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.2
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(interval)


@pytest.fixture
def ledger_agrees():
    """``ledger_agrees()``: assert that the payments integrity check (yesterday to
    tomorrow, no grace) reports no difference; returns its summary line."""

    def check() -> str:
        from reliability.services import ledger_integrity

        status, lines = ledger_integrity()
        assert status == 0 and lines[-1].endswith("agree"), lines
        return lines[-1]

    return check


@pytest.fixture
def wait_until():
    """``wait_until(predicate, timeout=..., what=...)``: the predicate's first true value."""
    return _wait_until


# --- Processes ------------------------------------------------------------------------


@dataclass
class Process:
    """A started process, alone in its process group (so a kill takes its children too)."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a lost machine would."""
        if self.alive:
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a Celery worker's warm shutdown), then SIGKILL if it lingers."""
        if not self.alive:
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def _spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> Process:
    with log.open("ab") as out:
        popen = subprocess.Popen(  # noqa: S603 - our own virtualenv's programs
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log)


def _wait_started(process: Process, ready: Callable[[], bool]) -> Process:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if not process.alive or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{process.name} did not start:\n{process.log_text()[-3000:]}")
        time.sleep(0.2)
    return process


@dataclass
class CeleryWorkers:
    """Real Celery workers (and at most one beat) on this run's queue; see the module."""

    directory: Path
    processes: list[Process] = field(default_factory=list)
    beat: Process | None = None

    def start(self, *, concurrency: int = 1, **overrides: str) -> Process:
        """A worker, once it is consuming. One process (solo pool) by default, so that a
        kill stops all of its work at once; ``concurrency`` > 1 uses the prefork pool."""
        name = f"worker{len(self.processes) + 1}-{uuid.uuid4().hex[:6]}"
        pool = ["--pool=solo"] if concurrency == 1 else ["--pool=prefork", f"-c{concurrency}"]
        args = [
            str(BIN / "celery"), "-A", "config", "worker", "-n", f"{name}@%h",
            "-Q", f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.BACKGROUND_QUEUE}",
            *pool, "-l", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        log = self.directory / f"{name}.log"
        process = _spawn(name, args, run_env(**{**FAST_RECOVERY, **overrides}), log)
        self.processes.append(process)
        return _wait_started(process, lambda: _answers_ping(f"{name}@{socket.gethostname()}"))

    def start_beat(self, **overrides: str) -> Process:
        """The production schedule (the 5-second posting sweep, the relays...), sent to
        this run's queue. It is not a worker: killing workers leaves it running."""
        assert self.beat is None or not self.beat.alive, "run exactly one beat"
        args = [
            str(BIN / "celery"), "-A", "config", "beat", "-l", "INFO",
            "-s", str(self.directory / "beat-schedule"), "--pidfile=",
        ]  # fmt: skip
        log = self.directory / "beat.log"
        self.beat = _spawn("beat", args, run_env(**{**FAST_RECOVERY, **overrides}), log)
        return _wait_started(self.beat, lambda: "is starting." in self.beat.log_text())

    def drop_queued(self) -> None:
        """Drop what waits on this run's queue (e.g. tasks sent while setting up)."""
        _drop_queued_messages()

    def log_text(self) -> str:
        everything = [*self.processes, *([self.beat] if self.beat else [])]
        return "\n".join(f"--- {p.name}\n{p.log_text()[-4000:]}" for p in everything)

    def stop_all(self) -> None:
        if self.beat is not None:
            self.beat.stop()
        for process in self.processes:
            process.stop()


def _answers_ping(worker: str) -> bool:
    """Whether ``worker`` answers. A broker connection that died under this process (Redis
    restarted by an earlier scenario) is dropped and the next call makes a new one."""
    from kombu import pools as kombu_pools
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from config.celery import app

    try:
        return bool(app.control.ping(destination=[worker], timeout=0.5))
    except (RedisConnectionError, OperationalError):
        # Drop kombu's pools (closing their dead connections) and Celery's references to
        # them, as after a fork: the next use builds new ones. Closing the pool alone left
        # it refusing every later acquire ("Acquire on closed pool"); emptying it without
        # closing left later acquires waiting for a connection forever.
        kombu_pools.reset()
        app._pool = None
        app.amqp._producer_pool = None
        return False


def _drop_queued_messages() -> None:
    """Empty this run's queue, and forget messages taken by workers that died with them
    (the broker would deliver those again after the visibility timeout)."""
    from config.celery import app

    queues = (settings.CELERY_TASK_DEFAULT_QUEUE, settings.BACKGROUND_QUEUE)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in queues:
            channel.queue_purge(queue)
        client = channel.client
        for tag, payload in client.hgetall(channel.unacked_key).items():
            _message, _exchange, routing_key = json.loads(payload)
            if routing_key in queues:
                client.hdel(channel.unacked_key, tag)
                client.zrem(channel.unacked_index_key, tag)


@pytest.fixture
def celery_workers(tmp_path):
    """Start, kill and restart real Celery workers that share the test's stores (tests
    using it need ``django_db(transaction=True)``: the workers only see committed rows).
    Reuse it in any scenario where a worker must live through a fault (see the module)."""
    _drop_queued_messages()
    workers = CeleryWorkers(tmp_path)
    yield workers
    workers.stop_all()
    _drop_queued_messages()


@dataclass
class AppServer:
    url: str
    process: Process


@pytest.fixture
def app_server(tmp_path):
    """Factory: ``app_server(workers=2, threads=8)`` serves the application with gunicorn
    (gthread workers) on a free port; returns its URL and process. Stopped at the end."""
    started: list[Process] = []

    def start(*, workers: int = 2, threads: int = 8, **overrides: str) -> AppServer:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        args = [
            str(BIN / "gunicorn"), "config.wsgi:application", "-b", f"127.0.0.1:{port}",
            "-k", "gthread", "-w", str(workers), "--threads", str(threads),
            "--timeout", "120", "--log-level", "warning",
        ]  # fmt: skip
        log = tmp_path / f"gunicorn-{port}.log"
        process = _spawn("gunicorn", args, run_env(TEST_DB_POOL="1", **overrides), log)
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/health/live", timeout=2) as response:  # noqa: S310
                    return response.status == 200
            except OSError:
                return False

        _wait_started(process, answers)
        return AppServer(url, process)

    yield start
    for process in started:
        process.stop()


# --- Row locks ------------------------------------------------------------------------


class RowLocks:
    """Row locks held by connections of their own, each in an open transaction."""

    def __init__(self) -> None:
        self._held: dict[int, psycopg.Connection] = {}

    @staticmethod
    def _connect(**kwargs) -> psycopg.Connection:
        db = connection.settings_dict
        return psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            user=db["USER"],
            password=db.get("PASSWORD") or None,
            dbname=db["NAME"],
            **kwargs,
        )

    def hold(self, model, pk: int) -> int:
        """Lock the row of ``model`` with primary key ``pk`` (FOR UPDATE) until released;
        returns the holding backend's pid."""
        conn = self._connect()
        table = conn.execute("SELECT quote_ident(%s)", [model._meta.db_table]).fetchone()[0]
        if conn.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [pk]).fetchone() is None:  # noqa: S608
            conn.close()
            raise AssertionError(f"no {model._meta.db_table} row {pk} to lock")
        pid = conn.info.backend_pid
        self._held[pid] = conn
        return pid

    def release(self, pid: int) -> None:
        conn = self._held.pop(pid)
        conn.rollback()
        conn.close()

    def release_all(self) -> None:
        for pid in list(self._held):
            self.release(pid)

    def waiters(self) -> dict[int, int]:
        """{waiting backend pid: the pid of our lock it waits for}, also for a backend
        queued behind another waiter of the same lock."""
        with self._connect(autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchall()
        blocked_by = dict(rows)

        def ours(pid: int, seen: frozenset = frozenset()) -> int | None:
            for holder in blocked_by.get(pid, ()):
                if holder in self._held:
                    return holder
                if holder not in seen and (found := ours(holder, seen | {pid})):
                    return found
            return None

        return {pid: holder for pid in blocked_by if (holder := ours(pid))}

    def backend_alive(self, pid: int) -> bool:
        with self._connect(autocommit=True) as conn:
            return bool(
                conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            )


@pytest.fixture
def row_locks():
    locks = RowLocks()
    yield locks
    locks.release_all()
