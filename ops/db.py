"""Where queries go: reports to the read replica when one is configured, everything else to
the primary.

``DATABASE_REPLICA_URL`` adds a database alias ``replica``; ``settings.REPORTING_DATABASE``
names the alias reports read (``replica`` when configured, else ``default``). Nothing is
routed by model: a report opts in at its call site, with

- ``reporting_alias()`` for a queryset (``queryset.using(reporting_alias())``), or
- ``with reporting():`` around a block whose plain reads (``Model.objects...``, related
  objects) should go to the replica.

Writes, ``select_for_update()``, migrations and every read outside those call sites use
``default``, so a workflow (a DCR approval, a posting) always reads the primary.

A replica is asynchronous: what it serves can be a few seconds behind the primary (see
``replica_lag_seconds``). That is acceptable for dashboards, exports and the integrity
check (which can read the primary with ``--primary``); never for a decision. A replica
that cannot be reached makes reports read the primary instead (a warning is logged).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

REPLICA = "replica"

_reporting: ContextVar[str | None] = ContextVar("reporting_alias", default=None)


def reporting_alias() -> str:
    """The alias reports read now: the configured reporting database when it answers,
    otherwise ``default``."""
    alias = settings.REPORTING_DATABASE
    if alias == DEFAULT_DB_ALIAS or alias not in connections.settings:
        return DEFAULT_DB_ALIAS
    try:
        connections[alias].ensure_connection()
    except DatabaseError as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.warning(
            "reporting database %r unreachable, reading the primary: %s", alias, first_line
        )
        return DEFAULT_DB_ALIAS
    return alias


@contextlib.contextmanager
def reporting() -> Iterator[str]:
    """Within the block, reads that name no database go to the reporting alias (yielded).
    For read-only report code only: never around a write or a decision."""
    token = _reporting.set(reporting_alias())
    try:
        yield _reporting.get()
    finally:
        _reporting.reset(token)


def replica_lag_seconds(alias: str | None = None) -> float | None:
    """How far the reporting database's replay is behind (seconds), ``0.0`` when it has
    replayed everything it received, ``None`` when it is the primary itself."""
    alias = alias or reporting_alias()
    if alias == DEFAULT_DB_ALIAS:
        return None
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL"
            " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
            " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
        )
        (lag,) = cursor.fetchone()
    return None if lag is None else float(lag)


class DatabaseCollector:
    """PostgreSQL's figures for /metrics, read at each scrape (the same on every instance):
    the replica's lag, the database's size and its configured limit.

    ``backoffice_replica_lag_seconds`` is 0 when no replica is configured (reports read
    the primary, which lags nothing) and absent when the configured replica cannot be read
    (reports then read the primary, and a warning is logged): alert on its value, and see
    the log for an unreachable replica. ``backoffice_replica_up`` is 1 or 0 for a
    configured replica, absent without one."""

    def collect(self):
        yield from self._replica()
        try:
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                cursor.execute("SELECT pg_database_size(current_database())")
                (size,) = cursor.fetchone()
        except DatabaseError:
            logger.warning("metrics: the database size could not be read")
        else:
            yield GaugeMetricFamily(
                "backoffice_db_size_bytes",
                "Size of the primary database on disk (pg_database_size).",
                value=size,
            )
        yield GaugeMetricFamily(
            "backoffice_db_size_limit_bytes",
            "The database's allotted storage (DATABASE_SIZE_LIMIT_GB; 0: not configured).",
            value=settings.DATABASE_SIZE_LIMIT_GB * 1024**3,
        )

    def _replica(self):
        alias = settings.REPORTING_DATABASE
        if alias == DEFAULT_DB_ALIAS:
            lag = 0.0
        else:
            try:
                connections[alias].ensure_connection()
                lag = replica_lag_seconds(alias) or 0.0  # None: it is no standby
                up = 1
            except DatabaseError:
                logger.warning("metrics: the replica %r could not be read", alias)
                lag, up = None, 0
            yield GaugeMetricFamily(
                "backoffice_replica_up", "1 when the configured replica answers.", value=up
            )
        if lag is not None:
            yield GaugeMetricFamily(
                "backoffice_replica_lag_seconds",
                "How far the reporting replica's replay is behind the primary (0: none).",
                value=lag,
            )


class ReportingRouter:
    """Reads go where ``reporting()`` says, or where Django would send them; writes and
    migrations only to ``default``; objects of the primary and the replica may be related
    (the replica holds the same rows)."""

    def db_for_read(self, model, **hints) -> str | None:
        return _reporting.get()  # None: Django's choice (the instance's database, or default)

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        same_data = {DEFAULT_DB_ALIAS, REPLICA}
        if obj1._state.db in same_data and obj2._state.db in same_data:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
