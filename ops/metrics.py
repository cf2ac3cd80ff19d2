"""Prometheus metrics at ``/metrics``: requests, Celery tasks and the database pools, plus
what the other layers count themselves (DynamoDB errors: ``dynamo.errors``) and the figures
apps register in ``ready()`` (``core.metrics``; the posting queue: ``payments.metrics``).

Processes. gunicorn runs several workers and Celery forks a pool, so each process keeps its
own figures. With ``PROMETHEUS_MULTIPROC_DIR`` set (``bin/run`` sets it and empties it at
start), every process writes them to files there (prometheus_client's multiprocess mode)
and ``/metrics`` adds up those of every process of the host: the web workers, and the
Celery workers and beat started with the same directory. Without the variable the figures
are the answering process's own (runserver, the tests).

Figures of the stores (posting queue depth, age of the oldest due item, dead letters) are
read by the registered collectors when ``/metrics`` is scraped, so every instance reports
the same values: alert on ``max`` of them, not ``sum``. Pool use is each process's own (a
``pid`` label in multiprocess mode), published when a request or task ends and at the scrape.
"""

from __future__ import annotations

import glob
import hmac
import ipaddress
import logging
import os
import time

from celery import signals
from django.conf import settings
from django.core.signals import request_finished
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from core.metrics import registered_collectors

from .logging import actor_fields
from .middleware import client_ip

logger = logging.getLogger("backoffice.request")

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_DURATION = Histogram(
    "backoffice_http_request_duration_seconds",
    "Time to answer a request, by view (URL name, never the raw path), method and status.",
    ["view", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)
TASK_DURATION = Histogram(
    "backoffice_celery_task_duration_seconds",
    "Time a Celery task ran, by task and outcome (success, failure, retry, ...).",
    ["task", "outcome"],
    buckets=_TASK_BUCKETS,
)
DB_POOL_IN_USE = Gauge(
    "backoffice_db_pool_connections_in_use",
    "Connections of a process's database pool lent out.",
    ["database"],
    multiprocess_mode="liveall",
)
DB_POOL_MAX = Gauge(
    "backoffice_db_pool_connections_max",
    "Most connections a process's database pool may open.",
    ["database"],
    multiprocess_mode="liveall",
)
DB_POOL_WAITING = Gauge(
    "backoffice_db_pool_requests_waiting",
    "Requests of a process waiting for a pooled database connection.",
    ["database"],
    multiprocess_mode="liveall",
)

SLOW_QUERIES = Counter(
    "backoffice_db_slow_queries",
    "Queries slower than DATABASE_SLOW_QUERY_SECONDS (outcome slow), or cancelled by the "
    "statement timeout (outcome cancelled), by database alias.",
    ["database", "outcome"],
)


# --- Requests -----------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Times each request into ``REQUEST_DURATION`` and logs one line for it (method, path
    without the query string, status, view, duration). Placed after the request context
    middleware, so that the line carries the request id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match.route) if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        REQUEST_DURATION.labels(view, method, str(response.status_code)).observe(elapsed)
        logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "view": view,
                "duration_ms": round(elapsed * 1000, 1),
                **actor_fields(getattr(request, "user", None)),
            },
        )
        return response


@receiver(request_finished)
def _request_finished(**kwargs) -> None:
    # After Django's own receiver has given the request's connection back to the pool: what
    # is still lent out belongs to the process's other requests.
    observe_pools()


# --- Celery tasks -------------------------------------------------------------------------

_task_started: dict[str, float] = {}


@signals.task_prerun.connect
def _task_started_at(task_id=None, **kwargs) -> None:
    _task_started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _task_started.pop(task_id, None)
    if started is None or task is None:
        return
    outcome = (state or "unknown").lower()
    TASK_DURATION.labels(task.name, outcome).observe(time.perf_counter() - started)
    observe_pools()


# --- Database pools -----------------------------------------------------------------------


def observe_pools() -> None:
    """Publish the use of this process's psycopg pools (Django's ``pool`` option)."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    # Django keeps one pool per alias and process in this class attribute; the public
    # ``connection.pool`` would open a pool for an alias this process never used.
    for alias, pool in list(getattr(DatabaseWrapper, "_connection_pools", {}).items()):
        stats = pool.get_stats()
        DB_POOL_IN_USE.labels(alias).set(stats["pool_size"] - stats["pool_available"])
        DB_POOL_MAX.labels(alias).set(stats["pool_max"])
        DB_POOL_WAITING.labels(alias).set(stats["requests_waiting"])


# --- Slow queries -------------------------------------------------------------------------

slow_query_logger = logging.getLogger("backoffice.db.slow")


def _statement(sql) -> str:
    """The statement's first 200 characters, without parameters (they may hold PII)."""
    return " ".join(str(sql).split())[:200]


def _time_query(execute, sql, params, many, context):
    """An execute wrapper (Django's ``connection.execute_wrapper`` protocol): counts and logs
    what exceeds the slow-query threshold, and what the statement timeout cancelled."""
    from psycopg.errors import QueryCanceled

    alias = context["connection"].alias
    started = time.perf_counter()
    try:
        result = execute(sql, params, many, context)
    except Exception as exc:
        if isinstance(exc.__cause__, QueryCanceled) or isinstance(exc, QueryCanceled):
            SLOW_QUERIES.labels(alias, "cancelled").inc()
            slow_query_logger.warning(
                "query cancelled after %.1f s: %s",
                time.perf_counter() - started,
                _statement(sql),
                extra={"database": alias},
            )
        raise
    elapsed = time.perf_counter() - started
    if elapsed >= settings.DATABASE_SLOW_QUERY_SECONDS:
        SLOW_QUERIES.labels(alias, "slow").inc()
        slow_query_logger.warning(
            "slow query, %.1f s: %s", elapsed, _statement(sql), extra={"database": alias}
        )
    return result


@receiver(connection_created)
def _watch_queries(connection, **kwargs) -> None:
    # The wrapper list belongs to the connection wrapper, which a pooled connection reuses.
    if _time_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_time_query)


# --- Exposition ---------------------------------------------------------------------------


def _forget_dead_processes(directory: str) -> None:
    """Drop the per-process gauges of processes that have ended (a gunicorn worker or a
    Celery child replaced), so that their last pool use is not reported for ever."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        try:
            pid = int(os.path.basename(path).rsplit("_", 1)[1].removesuffix(".db"))
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)
        except PermissionError:  # alive, another user's
            pass


def exposition() -> bytes:
    observe_pools()
    if MULTIPROC_DIR:
        _forget_dead_processes(MULTIPROC_DIR)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    stores = CollectorRegistry()  # the apps' figures, read from their stores now
    for collector in registered_collectors():
        stores.register(collector)
    return body + generate_latest(stores)


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(client_ip(request) or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
@require_GET
def metrics_view(request):
    """Prometheus text exposition; only for the configured networks or the bearer token."""
    if not _allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
