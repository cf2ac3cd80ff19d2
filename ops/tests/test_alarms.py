"""The seeds' missing alarms: the web process's statement timeout, the slow-query counter,
the replica's lag and the database's size, as /metrics exports them."""

import os
import socket
import subprocess
import sys

import pytest
from django.db import OperationalError, connection, connections, transaction
from prometheus_client import REGISTRY

from ops.db import REPLICA
from ops.tests.test_metrics import scrape, value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def from_this_machine(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def _options(module: str) -> str:
    """The PostgreSQL connection options a process importing ``module`` gets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_STATEMENT_TIMEOUT_MS", "WEB_STATEMENT_TIMEOUT_MS"}
    }
    env["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    code = (
        f"import {module}\n"
        "from django.conf import settings\n"
        "print(settings.DATABASES['default']['OPTIONS'].get('options', ''))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_web_process_cancels_statements_after_5_s_and_workers_do_not():
    assert _options("config.wsgi") == "-c statement_timeout=5000"
    assert _options("config.celery") == ""


def _slow(outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "backoffice_db_slow_queries_total", {"database": "default", "outcome": outcome}
    )
    return sample or 0.0


@pytest.mark.django_db
def test_a_statement_cancelled_by_the_timeout_is_counted():
    before = _slow("cancelled")
    with pytest.raises(OperationalError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 50")
        cursor.execute("SELECT pg_sleep(2)")
    assert _slow("cancelled") == before + 1


@pytest.mark.django_db
def test_a_query_over_the_threshold_is_counted_and_a_quick_one_is_not(settings, caplog, client):
    settings.DATABASE_SLOW_QUERY_SECONDS = 0.2
    before = _slow("slow")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert _slow("slow") == before
        with caplog.at_level("WARNING", logger="backoffice.db.slow"):
            cursor.execute("SELECT pg_sleep(%s)", [0.3])
    assert _slow("slow") == before + 1
    assert any("SELECT pg_sleep(%s)" in r.getMessage() for r in caplog.records)
    assert value(scrape(client), "backoffice_db_slow_queries_total", outcome="slow") >= 1


@pytest.mark.django_db
def test_database_size_and_its_limit_are_exported(settings, client):
    settings.DATABASE_SIZE_LIMIT_GB = 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        (size,) = cursor.fetchone()
    text = scrape(client)
    assert value(text, "backoffice_db_size_bytes") == pytest.approx(size, rel=0.1)
    assert value(text, "backoffice_db_size_limit_bytes") == 2 * 1024**3


@pytest.mark.django_db
def test_without_a_replica_the_lag_is_zero(client):
    text = scrape(client)
    assert value(text, "backoffice_replica_lag_seconds") == 0
    assert value(text, "backoffice_replica_up") is None


@pytest.mark.django_db(databases=["default", REPLICA])
def test_a_configured_replica_reports_its_lag(settings, client):
    settings.REPORTING_DATABASE = REPLICA
    text = scrape(client)
    assert value(text, "backoffice_replica_up") == 1
    assert value(text, "backoffice_replica_lag_seconds") == 0  # the test mirror replays nothing


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(databases=["default", REPLICA])
def test_an_unreachable_replica_is_down_and_its_lag_absent(settings, client, monkeypatch):
    settings.REPORTING_DATABASE = REPLICA
    replica = connections[REPLICA]
    replica.close()
    monkeypatch.setitem(replica.settings_dict, "PORT", str(_closed_port()))
    try:
        text = scrape(client)
    finally:
        replica.close()
    assert value(text, "backoffice_replica_up") == 0
    assert value(text, "backoffice_replica_lag_seconds") is None
