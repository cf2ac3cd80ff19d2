"""The daily backup (Celery beat), its pruning, its figures for /metrics, and the restore
drill.

**Daily.** Beat's ``backup-daily`` runs ``backup_daily`` at ``BACKUP_HOUR``:``BACKUP_MINUTE``
IST under the run-once guard (``core.jobs``, job ``backup_daily`` keyed by the IST date,
lease ``BACKUP_LEASE_SECONDS``): a second beat or a redelivered task skips a run another
worker holds or has done. It writes ``BACKUP_DIRECTORY/backup-<UTC time>`` and then prunes
the backups of that directory older than ``BACKUP_RETENTION_DAYS`` (the newest good one is
never pruned) and partial directories a killed run left. The run's ``JobRun`` row keeps
its figures (``duration_seconds``, ``size_bytes``, ``path``): what /metrics reads.

**Metrics** (``BackupCollector``, read from PostgreSQL at each scrape, the same on every
instance): the time of the last good backup (0 when there is none), the latest run's
success (0 when it failed, else 1), the last good backup's duration and size.

**Drill.** ``backup_drill`` restores the newest good backup into a scratch database on the
same server and a scratch table prefix, verifies every count and checksum against the
manifest and drops both, whatever happened.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.conf import settings
from django.test.utils import override_settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from core.jobs import job_finish, job_run
from core.models import JobRun
from dynamo import tables

from . import BackupError
from . import postgres as pg
from .services import FORMAT, MANIFEST, Verification, backup_check, backup_create, backup_restore

JOB = "backup_daily"
PREFIX = "backup-"


@dataclass
class Backup:
    path: Path
    created_at: datetime.datetime


def directory() -> Path:
    return Path(settings.BACKUP_DIRECTORY)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def backups(where: Path | None = None) -> list[Backup]:
    """The finished backups of the directory (a readable manifest of this format), newest
    first. Files are not checked here: ``backup_check`` does that before a restore."""
    found = []
    where = where or directory()
    if not where.is_dir():
        return []
    for path in where.iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            created = datetime.datetime.fromisoformat(manifest["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if manifest.get("format") == FORMAT:
            found.append(Backup(path, created))
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def backup_prune(*, now: datetime.datetime | None = None, where: Path | None = None) -> list[Path]:
    """Delete the backups older than ``BACKUP_RETENTION_DAYS`` (never the newest) and the
    partial directories of runs that died more than a lease ago; what was deleted."""
    now = now or timezone.now()
    where = where or directory()
    cutoff = now - datetime.timedelta(days=settings.BACKUP_RETENTION_DAYS)
    deleted = [b.path for b in backups(where)[1:] if b.created_at < cutoff]
    stale = now.timestamp() - settings.BACKUP_LEASE_SECONDS
    if where.is_dir():
        deleted += [
            path
            for path in where.glob(f".{PREFIX}*.partial-*")
            if path.is_dir() and path.stat().st_mtime < stale
        ]
    for path in deleted:
        shutil.rmtree(path)
    return deleted


def backup_daily(*, today: datetime.date | None = None) -> dict | None:
    """The guarded daily backup: None when this date's run is done or held elsewhere."""
    today = today or timezone.localdate()
    lease = datetime.timedelta(seconds=settings.BACKUP_LEASE_SECONDS)
    with job_run(JOB, today, lease=lease) as run:
        if run is None:
            return None
        started = time.monotonic()
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        path, _manifest = backup_create(output=directory() / f"{PREFIX}{stamp}")
        counts = {
            "path": str(path),
            "duration_seconds": round(time.monotonic() - started, 3),
            "size_bytes": _size(path),
            "pruned": len(backup_prune()),
        }
        job_finish(run, counts=counts)
        return counts


# --- Metrics -----------------------------------------------------------------------------------


class BackupCollector:
    """The daily backup's figures, from its job runs in PostgreSQL."""

    def collect(self):
        runs = JobRun.objects.filter(name=JOB)
        good = runs.filter(state=JobRun.State.DONE).order_by("-finished_at").first()
        latest = runs.exclude(state=JobRun.State.RUNNING).order_by("-started_at").first()
        yield GaugeMetricFamily(
            "backoffice_backup_last_success_timestamp_seconds",
            "When the last good daily backup finished (Unix time; 0: never).",
            value=good.finished_at.timestamp() if good and good.finished_at else 0,
        )
        yield GaugeMetricFamily(
            "backoffice_backup_last_run_success",
            "0 when the latest finished daily backup failed, else 1 (also before the first "
            "run: the age of the last good backup tells that one).",
            value=0 if latest is not None and latest.state == JobRun.State.FAILED else 1,
        )
        if good is not None:
            yield GaugeMetricFamily(
                "backoffice_backup_last_duration_seconds",
                "How long the last good daily backup took.",
                value=float(good.counts.get("duration_seconds", 0)),
            )
            yield GaugeMetricFamily(
                "backoffice_backup_last_size_bytes",
                "Size on disk of the last good daily backup.",
                value=float(good.counts.get("size_bytes", 0)),
            )


# --- Drill -------------------------------------------------------------------------------------


@contextmanager
def _scratch(base: pg.Database) -> Iterator[tuple[pg.Database, str]]:
    """A new empty database on the server of ``base`` and a new table prefix, for the
    block; both dropped after it, also when it fails."""
    token = uuid.uuid4().hex[:10]
    scratch = dataclasses.replace(base, name=f"drill_{token}")
    prefix = f"drill_{token}_"
    admin = dataclasses.replace(base, name="postgres")
    with admin.connect(options="") as conn:
        conn.autocommit = True
        conn.execute(f'CREATE DATABASE "{scratch.name}"')
    try:
        yield scratch, prefix
    finally:
        with admin.connect(options="") as conn:
            conn.autocommit = True
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch.name}" WITH (FORCE)')
        with override_settings(DYNAMODB_TABLE_PREFIX=prefix):
            tables.delete_all()


def backup_drill(
    *,
    source: Path | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> tuple[Path, Verification]:
    """Restore ``source`` (default: the newest backup of ``BACKUP_DIRECTORY``) into a
    scratch database and table prefix, verify it, drop both. For a command's process only:
    it switches the process's table prefix while it runs."""
    if source is None:
        found = backups()
        if not found:
            raise BackupError(f"no backup in {directory()} to drill")
        source = found[0].path
    backup_check(directory=source)
    base = pg.Database.from_django()
    try:
        with _scratch(base) as (scratch, prefix):
            report(f"restoring {source} into database {scratch.name!r}, prefix {prefix!r}")
            with override_settings(DYNAMODB_TABLE_PREFIX=prefix):
                result = backup_restore(directory=source, database=scratch, report=report)
    except psycopg.Error as exc:
        raise BackupError(f"PostgreSQL failed during the drill: {pg.first_line(exc)}") from None
    return source, result
