"""Stop and start the fault-injection suite's own PostgreSQL, Redis and DynamoDB Local.

The suite (``pytest -m faults reliability``, run by ``bin/test``) never touches the
services that development and the main test run use: it runs against a second set that
``bin/services`` keeps under ``LOCAL_SERVICES_DIR`` on the ``LOCAL_*_PORT`` ports, and the
application reaches them through ``DATABASE_URL``, ``REDIS_URL`` and ``DYNAMODB_ENDPOINT``.
``bin/services`` treats a service whose URL variable is set as someone else's, so it is
called here without those variables. Anything else (no ``LOCAL_SERVICES_DIR``, or the
application pointed at another port than the one that would be stopped) is refused before
a service is touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from ops.health import check_dynamodb, check_redis

ROOT = Path(__file__).resolve().parent.parent
BIN_SERVICES = ROOT / "bin" / "services"
SERVICES = ("postgres", "redis", "dynamodb")
PORT_VARS = {
    "postgres": "LOCAL_PG_PORT",
    "redis": "LOCAL_REDIS_PORT",
    "dynamodb": "LOCAL_DYNAMODB_PORT",
}
URL_VARS = ("DATABASE_URL", "REDIS_URL", "DYNAMODB_ENDPOINT")
READY_TIMEOUT = 60.0


class FaultInstanceError(Exception):
    """The suite is not pointed at a service set of its own; nothing was stopped."""


def _app_port(name: str) -> int | None:
    if name == "postgres":
        return int(settings.DATABASES["default"].get("PORT") or 5432)
    url = settings.REDIS_URL if name == "redis" else (settings.DYNAMODB_ENDPOINT or "")
    return urlparse(url).port


def _app_host(name: str) -> str | None:
    if name == "postgres":
        return settings.DATABASES["default"].get("HOST")
    url = settings.REDIS_URL if name == "redis" else (settings.DYNAMODB_ENDPOINT or "")
    return urlparse(url).hostname


def _probe_postgres() -> None:
    db = settings.DATABASES["default"]
    psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        connect_timeout=2,
    ).close()


PROBES = {"postgres": _probe_postgres, "redis": check_redis, "dynamodb": check_dynamodb}


@dataclass
class Outage:
    """One service's outage, as measured: seconds down, and from start to ready."""

    name: str
    stopped_at: float = 0.0
    started_at: float = 0.0
    ready_after: float = 0.0

    @property
    def down_for(self) -> float:
        return (self.started_at or time.monotonic()) - self.stopped_at


class FaultServices:
    """The suite's own service set, checked on creation; see the module docstring."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        environ = dict(os.environ if environ is None else environ)
        directory = environ.get("LOCAL_SERVICES_DIR", "").strip()
        if not directory or (ROOT / directory).resolve() == (ROOT / ".local").resolve():
            raise FaultInstanceError(
                "the fault-injection suite stops and starts services: run it with bin/test "
                "(TEST_SUITE=faults bin/test), which gives it its own (LOCAL_SERVICES_DIR)"
            )
        for name in SERVICES:
            wanted = environ.get(PORT_VARS[name])
            if (
                not wanted
                or _app_port(name) != int(wanted)
                or _app_host(name)
                not in {
                    "127.0.0.1",
                    "localhost",
                }
            ):
                raise FaultInstanceError(
                    f"{name}: the application uses {_app_host(name)}:{_app_port(name)} but "
                    f"{PORT_VARS[name]}={wanted or '(unset)'}; the suite would stop another "
                    "server than the one under test"
                )
        # bin/services manages a service only when its URL variable is unset
        self.environ = {k: v for k, v in environ.items() if k not in URL_VARS}
        self.directory = directory

    def _run(self, action: str, name: str) -> None:
        result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [sys.executable, str(BIN_SERVICES), action, name],
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"bin/services {action} {name} failed: {result.stderr.strip()}")

    def stop(self, name: str) -> None:
        self._run("stop", name)

    def start(self, name: str) -> float:
        """Start and wait until the service answers; returns the seconds that took."""
        began = time.monotonic()
        self._run("start", name)
        self.wait_ready(name)
        return time.monotonic() - began

    def wait_ready(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                PROBES[name]()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def is_up(self, name: str) -> bool:
        try:
            PROBES[name]()
        except Exception:
            return False
        return True

    @contextmanager
    def down(self, name: str) -> Iterator[Outage]:
        """Stop ``name`` for the ``with`` block; it is started again (and waited for)
        however the block ends, so a failing test never leaves the next one without it."""
        outage = Outage(name)
        self.stop(name)
        outage.stopped_at = time.monotonic()
        try:
            yield outage
        finally:
            outage.started_at = time.monotonic()
            outage.ready_after = self.start(name)


def ledger_integrity() -> tuple[int, list[str]]:
    """Run ``payments_integrity`` from yesterday to tomorrow (today's payments may count
    for tomorrow after a branch's cut-off) with no grace, so that a transaction not yet
    posted is a difference: its exit status and output lines."""
    from io import StringIO

    today = timezone.localdate()
    out = StringIO()
    status = 0
    try:
        call_command(
            "payments_integrity",
            "--from",
            (today - timedelta(days=1)).isoformat(),
            "--to",
            (today + timedelta(days=1)).isoformat(),
            "--grace-minutes",
            "0",
            stdout=out,
        )
    except SystemExit as exc:
        status = int(exc.code or 0)
    return status, out.getvalue().strip().splitlines()


def figures(scenario: str, **measured) -> None:
    """Print a scenario's figures on one line (the suite runs with -s) for docs/reliability.md."""
    shown = ", ".join(f"{name}={value}" for name, value in measured.items())
    print(f"\n[faults] {scenario}: {shown}", flush=True)
