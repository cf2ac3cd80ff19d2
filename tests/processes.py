"""A fresh process of the project, for what is decided once, at start-up: the settings
(production mode, the environment's variables) and what the apps register in ready()."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

ROOT = Path(__file__).resolve().parents[1]


def environment(*, drop: tuple[str, ...] = (), **overrides: str) -> dict[str, str]:
    """This process's environment for the project's real settings (``config.settings``):
    without pytest's variables, and without the variables named (or prefixed) in ``drop``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", *drop))}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(overrides)
    return env


def project_run(
    *args: str, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    """``python *args`` in the project's folder: ``project_run("manage.py", "check")`` or
    ``project_run("-c", script)``. ``env`` defaults to :func:`environment`."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- Long-running processes that join the test run --------------------------------------
# The fault suite's Celery workers and servers, the stream processors: a subprocess joins
# the run through run_env() (the pytest-django test database, this run's Redis database,
# DynamoDB endpoint and table prefix, Celery queue and cache key prefix, through the TEST_*
# variables of config/settings_test.py). What it writes, the test sees, and the other way
# round; the test needs django_db(transaction=True), as the process sees only committed rows.

START_TIMEOUT = 60.0


def run_env(**overrides: str) -> dict[str, str]:
    """The environment of a subprocess that shares this test run's stores."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    redis_db = urlparse(settings.REDIS_URL).path.lstrip("/") or "0"
    env = {
        # not an xdist worker: the process reads the stores given here
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


def wait_until(
    predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.2
) -> object:
    """Poll ``predicate`` until it is true; its value, or an AssertionError saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(interval)


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
        """SIGTERM (a clean stop), then SIGKILL if it lingers."""
        if not self.alive:
            return
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> Process:
    """Start ``args`` in the project's folder, its output (both streams) into ``log``."""
    with log.open("ab") as out:
        popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log)


def wait_started(process: Process, ready: Callable[[], bool]) -> Process:
    """``process`` once ``ready()``; killed, and an AssertionError with its log, if it died
    or took longer than ``START_TIMEOUT``."""
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if not process.alive or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{process.name} did not start:\n{process.log_text()[-3000:]}")
        time.sleep(0.2)
    return process
