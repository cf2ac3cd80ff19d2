"""/metrics: who may read it, and that its figures follow what really happens (requests,
Celery tasks, DynamoDB errors, the posting queue in DynamoDB, the database pool, other
processes); the alert rules name only metrics it exports."""

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError
from celery import shared_task
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app
from core.clock import iso
from dynamo.errors import DYNAMODB_ERRORS, error_kind, is_unavailable
from dynamo.shards import shard_key
from dynamo.tests.faults import inject
from dynamo.transactions import MAX_ATTEMPTS
from ops import metrics
from ops.tasks import heartbeat_task
from payments.ddb_models import QueueItem
from payments.exceptions import StoreUnavailable
from payments.services import payment_ingest
from tests.factories import UserFactory, make_loan, payment

ALERTS = Path(metrics.__file__).parent / "prometheus" / "alerts.yml"


@shared_task(name="ops.tests.metrics_fails")
def always_fails() -> None:
    raise ValueError("this task fails on purpose")


@pytest.fixture(autouse=True)
def from_this_machine(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, **labels) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def count(text: str, name: str, **labels) -> float:
    return value(text, name, **labels) or 0.0


def wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


# --- Access -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_needs_an_allowed_network_or_the_token(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 403  # neither configured: nobody

    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200

    settings.METRICS_TOKEN = "t0ken-for-prometheus"
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", **outside).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken-for-prometheus", **outside)
    assert ok.status_code == 200 and b"backoffice_http_request_duration_seconds" in ok.content
    assert client.post("/metrics").status_code == 405


# --- Requests and tasks -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_request_is_timed_by_view_method_and_status_never_by_path(client):
    name = "backoffice_http_request_duration_seconds_count"
    live = {"view": "health:live", "method": "GET", "status": "200"}
    review = {"view": "mandates:review", "method": "GET", "status": "302"}
    before = scrape(client)
    client.get("/health/live")
    client.get("/mandates/987654/review/")  # not signed in: a redirect to the login
    client.get("/mandates/987655/review/")
    client.get("/no-such-page-424242/")
    after = scrape(client)
    assert count(after, name, **live) == count(before, name, **live) + 1
    assert count(after, name, **review) == count(before, name, **review) + 2
    unmatched = {"view": "unmatched", "method": "GET", "status": "404"}
    assert count(after, name, **unmatched) == count(before, name, **unmatched) + 1
    # The raw paths appear in no label (a sample's value may hold those digits by chance).
    labels = [line.partition("{")[2].rpartition("}")[0] for line in after.splitlines()]
    for raw in ("987654", "424242"):
        assert not [found for found in labels if raw in found]
    assert value(after, "backoffice_http_request_duration_seconds_sum", **live) > 0


@pytest.mark.django_db(transaction=True)
def test_task_runs_are_timed_with_their_outcome(client):
    name = "backoffice_celery_task_duration_seconds_count"
    ok = {"task": "ops.tasks.heartbeat_task", "outcome": "success"}
    failed = {"task": "ops.tests.metrics_fails", "outcome": "failure"}
    before = scrape(client)
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        heartbeat_task.delay()
        always_fails.delay()
        wait_for(
            lambda: (
                count(scrape(client), name, **ok) > count(before, name, **ok)
                and count(scrape(client), name, **failed) > count(before, name, **failed)
            )
        )
    after = scrape(client)
    assert count(after, name, **ok) == count(before, name, **ok) + 1
    assert count(after, name, **failed) == count(before, name, **failed) + 1


# --- DynamoDB -----------------------------------------------------------------------------


def _queue_item(item_id: str, status: str, next_attempt_at: datetime) -> None:
    now = iso(datetime.now(UTC))
    QueueItem(
        item_id,
        queue_status=f"POSTING#{status}",
        queue_shard=shard_key(f"POSTING#{status}", item_id, django_settings.PAYMENTS_QUEUE_SHARDS),
        next_attempt_at=iso(next_attempt_at),
        txn_id=item_id,
        loan_number="LN0000000001",
        branch_id=1,
        attempts=0,
        created_at=now,
        updated_at=now,
    ).save()


@pytest.mark.django_db
def test_queue_depth_oldest_due_age_and_dead_letters_come_from_dynamodb(client):
    empty = scrape(client)
    assert value(empty, "backoffice_metrics_source_up", source="dynamodb") == 1
    assert value(empty, "backoffice_posting_queue_depth", status="ready") == 0
    assert value(empty, "backoffice_posting_queue_oldest_due_age_seconds") == 0
    assert value(empty, "backoffice_posting_dead_letters") == 0

    now = datetime.now(UTC)
    _queue_item("q-ready-due", "READY", now - timedelta(minutes=10))
    _queue_item("q-ready-later", "READY", now + timedelta(minutes=5))  # backing off
    _queue_item("q-leased", "LEASED", now + timedelta(seconds=50))  # lease still running
    _queue_item("q-lease-over", "LEASED", now - timedelta(minutes=2))
    _queue_item("q-dead-1", "DEAD", now)
    _queue_item("q-dead-2", "DEAD", now)
    _queue_item("q-done", "DONE", now - timedelta(hours=1))
    text = scrape(client)
    assert value(text, "backoffice_posting_queue_depth", status="ready") == 2
    assert value(text, "backoffice_posting_queue_depth", status="leased") == 2
    assert 600 <= value(text, "backoffice_posting_queue_oldest_due_age_seconds") < 660
    assert value(text, "backoffice_posting_dead_letters") == 2


@pytest.mark.django_db
def test_an_unreadable_queue_is_reported_and_the_rest_still_served(client):
    with inject("Query", "unavailable", times=1000):
        text = scrape(client)
    assert value(text, "backoffice_metrics_source_up", source="dynamodb") == 0
    assert value(text, "backoffice_posting_dead_letters") is None
    assert "backoffice_http_request_duration_seconds" in text


@pytest.mark.django_db
def test_the_outbox_backlog_by_topic_comes_from_postgres(client, settings):
    from audit.services import audit_record
    from core.models import OutboxMessage
    from core.outbox import outbox_relay

    settings.OUTBOX_DELIVER_ON_COMMIT = False
    OutboxMessage.objects.filter(done_at__isnull=True).delete()  # e.g. the roles' migration
    empty = scrape(client)
    for topic in ("audit", "notifications.release", "mandates.result", "payments.reversal"):
        assert value(empty, "backoffice_outbox_pending_messages", topic=topic) == 0
        assert value(empty, "backoffice_outbox_oldest_pending_age_seconds", topic=topic) == 0

    old, _recent = (
        audit_record(instance_or_entity=f"loans.loanaccount#{n}", action="transition")
        for n in (1, 2)
    )
    OutboxMessage.objects.filter(pk=old.pk).update(
        created_at=datetime.now(UTC) - timedelta(minutes=15)
    )
    text = scrape(client)
    assert value(text, "backoffice_outbox_pending_messages", topic="audit") == 2
    assert 900 <= value(text, "backoffice_outbox_oldest_pending_age_seconds", topic="audit") < 960
    assert value(text, "backoffice_outbox_pending_messages", topic="payments.reversal") == 0

    assert outbox_relay()["audit"] == 2
    done = scrape(client)
    assert value(done, "backoffice_outbox_pending_messages", topic="audit") == 0
    assert value(done, "backoffice_outbox_oldest_pending_age_seconds", topic="audit") == 0


@pytest.mark.django_db
def test_dynamodb_throttles_and_conflicts_are_counted_once_each(client):
    name = "backoffice_dynamodb_errors_total"
    loan = make_loan()
    before = scrape(client)
    with inject("TransactWriteItems", "throttling", times=3):
        payment_ingest(
            payment=payment(loan),
            idempotency_key="k-1",
            principal=UserFactory(is_superuser=True),
            source="t",
        )
    with inject("TransactWriteItems", "conflict", times=2):
        payment_ingest(
            payment=payment(loan, receipt_number="R-2"),
            idempotency_key="k-2",
            principal=UserFactory(is_superuser=True),
            source="t",
        )
    with inject("TransactWriteItems", "throttling", times=100), pytest.raises(StoreUnavailable):
        payment_ingest(
            payment=payment(loan),
            idempotency_key="k-3",
            principal=UserFactory(is_superuser=True),
            source="t",
        )
    after = scrape(client)
    # 3 throttles, then every attempt of the write that ran out of them: once each
    assert count(after, name, kind="throttle") == count(before, name, kind="throttle") + 3 + (
        MAX_ATTEMPTS
    )
    assert count(after, name, kind="conflict") == count(before, name, kind="conflict") + 2
    assert count(after, name, kind="error") == count(before, name, kind="error")


def test_a_failed_condition_is_the_stores_answer_not_an_error():
    condition = ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")
    validation = ClientError({"Error": {"Code": "ValidationException"}}, "PutItem")
    assert error_kind(condition) is None and error_kind(validation) == "error"
    before = DYNAMODB_ERRORS.labels("error")._value.get()
    assert not is_unavailable(condition)
    assert not is_unavailable(validation) and not is_unavailable(validation)
    assert DYNAMODB_ERRORS.labels("error")._value.get() == before + 1


# --- The database pool --------------------------------------------------------------------


@pytest.fixture
def pooled_database():
    """The test database through Django's pool (the tests' own connections are plain), at
    most four connections. Its alias is "default" so that Django's connection set-up (the
    hstore lookup of django.contrib.postgres) goes through the test's own connection."""
    wrapper = DatabaseWrapper(
        {
            **connection.settings_dict,
            "OPTIONS": {
                **connection.settings_dict["OPTIONS"],
                "pool": {"min_size": 1, "max_size": 4},
            },
        },
        alias="default",
    )
    try:
        yield wrapper
    finally:
        wrapper.close()
        wrapper.close_pool()


def _settled(pool) -> None:
    """Lending the pool's only idle connection makes it open another in the background;
    until that one is ready it counts in the pool's size but not as available."""
    for _ in range(100):
        stats = pool.get_stats()
        if stats["pool_size"] - stats["pool_available"] <= 1:
            return
        time.sleep(0.05)


@pytest.mark.django_db
def test_pool_use_is_exported(client, pooled_database):
    pooled_database.ensure_connection()  # one connection lent out of four
    _settled(pooled_database.pool)
    held = scrape(client)
    pooled_database.close()  # back to the pool
    returned = scrape(client)
    labels = {"database": "default"}
    assert value(held, "backoffice_db_pool_connections_in_use", **labels) == 1
    assert value(held, "backoffice_db_pool_connections_max", **labels) == 4
    assert value(held, "backoffice_db_pool_requests_waiting", **labels) == 0
    assert value(returned, "backoffice_db_pool_connections_in_use", **labels) == 0


# --- Other processes (multiprocess mode) --------------------------------------------------

_OTHER_PROCESS = """
import sys
from ops import metrics
metrics.TASK_DURATION.labels("elsewhere.task", "success").observe(0.2)
metrics.DB_POOL_IN_USE.labels("default").set(7)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.django_db
def test_figures_of_the_hosts_other_processes_are_added_up(client, tmp_path, monkeypatch):
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_PROCESS],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        cwd=Path(metrics.__file__).parent.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "ready"
        monkeypatch.setattr(metrics, "MULTIPROC_DIR", str(tmp_path))
        alive = scrape(client)
    finally:
        other.communicate("", timeout=30)
    ended = scrape(client)
    task = {"task": "elsewhere.task", "outcome": "success"}
    assert value(alive, "backoffice_celery_task_duration_seconds_count", **task) == 1
    pool = {"database": "default", "pid": str(other.pid)}
    assert value(alive, "backoffice_db_pool_connections_in_use", **pool) == 7
    # an ended process's counts stay; its pool use is no longer reported
    assert value(ended, "backoffice_celery_task_duration_seconds_count", **task) == 1
    assert value(ended, "backoffice_db_pool_connections_in_use", **pool) is None


# --- Alert rules --------------------------------------------------------------------------

_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_PROMQL_WORDS |= {"and", "or", "unless", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers that are not functions, keywords,
    label names or durations."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = match.group()
        if word in _PROMQL_WORDS or expr[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exported_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def test_metric_names_are_read_from_expressions():
    expr = 'sum by (task) (rate(a_total{kind="x|y"}[5m])) / max(b_seconds) > 0.8 and on(job) c'
    assert metric_names(expr) == {"a_total", "b_seconds", "c"}


@pytest.mark.django_db
def test_alert_rules_name_only_metrics_that_metrics_exports(client):
    exported = exported_names(scrape(client))
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {
        "DatabasePoolNearlyFull",
        "PostingQueueStale",
        "PostingDeadLetters",
        "HttpErrorRateHigh",
        "DynamoDBThrottling",
        "DynamoDBErrors",
        "CeleryTaskFailureRateHigh",
        "OutboxBacklog",
    } <= {rule["alert"] for rule in rules}
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']} reads no metric"
        assert names <= exported, f"{rule['alert']} reads {sorted(names - exported)}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
