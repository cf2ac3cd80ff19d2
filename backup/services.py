"""Create a backup, check one, restore it into an empty environment, verify the result.

See the package's docstring for the layout and for how the two stores are kept consistent.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from core.clock import iso
from dynamo import registry, tables

from . import BackupError
from . import dynamodb as ddb
from . import postgres as pg

FORMAT = "payments-backoffice-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PG_FILE = "postgres.dump"
DDB_DIR = "dynamodb"
CHECKSUMS = (
    "dynamodb: per table, the sum modulo 2**256 of the SHA-256 of every item's canonical JSON "
    "(keys and set members sorted, no spaces); postgres: per table, SHA-256 of "
    "'rows:high:low', high and low the sums of the two 64-bit halves of md5(row::text) "
    "(TimeZone UTC, DateStyle ISO,YMD, IntervalStyle postgres, extra_float_digits 3, "
    "bytea_output hex)"
)
TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _now() -> str:
    return iso(datetime.datetime.now(datetime.UTC))


def _null_progress(description: str, total: int | None) -> ddb.NullProgress:
    return ddb.NullProgress()


def app_version() -> dict:
    base = Path(settings.BASE_DIR)
    version = None
    with suppress(OSError, KeyError, tomllib.TOMLDecodeError):
        version = tomllib.loads((base / "pyproject.toml").read_text())["project"]["version"]
    commit = None
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, when there is one
            cwd=base,
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit = result.stdout.strip() if result.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": version, "git_commit": commit}


def default_output() -> Path:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(settings.BACKUP_DIRECTORY) / f"backup-{stamp}"


# --- Create -------------------------------------------------------------------------------


def backup_create(
    *,
    output: Path | None = None,
    segments: int = 4,
    progress: ddb.Progress = _null_progress,
) -> tuple[Path, dict]:
    """Write a backup directory at ``output`` (new, or empty); returns it and its manifest.

    The files are written to a hidden sibling directory that is renamed into place only
    when everything, the manifest last, is written: a failed run leaves nothing behind."""
    target = Path(output) if output else default_output()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} already exists and is not an empty directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as exc:
        raise BackupError(f"cannot write the backup at {target}: {exc}") from None
    try:
        manifest = _write(work, segments=segments, progress=progress)
        if target.exists():
            target.rmdir()
        work.rename(target)
    except psycopg.Error as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(f"PostgreSQL failed during the backup: {pg.first_line(exc)}") from None
    except PynamoDBException as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(f"DynamoDB failed during the backup: {exc}") from None
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(f"cannot write the backup at {target}: {exc}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target, manifest


def _write(work: Path, *, segments: int, progress: ddb.Progress) -> dict:
    db = pg.Database.from_django()
    snapshot = pg.snapshot_open(db)
    try:
        (work / DDB_DIR).mkdir()
        dump = pg.dump_start(db, snapshot, work / PG_FILE)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                # the table checksums read the snapshot while the tables are scanned
                pg_checksums = pool.submit(pg.checksums, snapshot.conn)
                scan_started = _now()
                try:
                    dynamo_tables = {
                        model.Meta.base_table_name: _export(model, work, segments, progress)
                        for model in registry.models()
                    }
                except BaseException:
                    snapshot.conn.cancel_safe()  # do not wait for the checksums to finish
                    raise
                scan_finished = _now()
                pg_tables = pg_checksums.result()
            pg.dump_finish(dump)
        except BaseException:
            if dump.poll() is None:
                dump.kill()
            dump.wait()
            raise
        pg_dump_version = pg.tool_version("pg_dump", snapshot.server_major)
    finally:
        snapshot.conn.close()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": _now(),
        "app": app_version(),
        "window": {"from": snapshot.taken_at, "to": scan_finished},
        "checksums": CHECKSUMS,
        "postgres": {
            "file": PG_FILE,
            "sha256": ddb.file_sha256(work / PG_FILE),
            "database": db.name,
            "server_version": snapshot.server_version,
            "pg_dump": pg_dump_version,
            "snapshot_at": snapshot.taken_at,
            "snapshot_id": snapshot.snapshot_id,
            "wal_lsn": snapshot.wal_lsn,
            "tables": pg_tables,
        },
        "dynamodb": {
            "endpoint": settings.DYNAMODB_ENDPOINT or "aws",
            "region": settings.DYNAMODB_REGION,
            "table_prefix": settings.DYNAMODB_TABLE_PREFIX,
            "scan_started_at": scan_started,
            "scan_finished_at": scan_finished,
            "segments": segments,
            "tables": dynamo_tables,
        },
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _export(model: type[Model], work: Path, segments: int, progress: ddb.Progress) -> dict:
    name = model.Meta.base_table_name
    path = work / DDB_DIR / f"{name}.jsonl.gz"
    tally = ddb.export_table(model.Meta.table_name, path, segments=segments, progress=progress)
    return {
        "table_name": model.Meta.table_name,
        "file": f"{DDB_DIR}/{path.name}",
        "sha256": ddb.file_sha256(path),
        "items": tally.items,
        "checksum": tally.checksum,
        "indexes": sorted(index.Meta.index_name for index in model._indexes.values()),
    }


# --- Check a backup before using it ----------------------------------------------------------


def _models_by_name() -> dict[str, type[Model]]:
    return {model.Meta.base_table_name: model for model in registry.models()}


def backup_check(*, directory: Path) -> dict:
    """Every file present and intact, every DynamoDB file's count and checksum as recorded:
    the manifest, or BackupError naming the first problem. Touches no store."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BackupError(f"{directory} is not a backup directory (no such directory)")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{directory} has no {MANIFEST}: not a backup, or an unfinished one")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{manifest_path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{manifest_path} is not the manifest of a {FORMAT}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{manifest_path}: format version {manifest.get('format_version')!r}; "
            f"this version reads {FORMAT_VERSION}"
        )
    try:
        _check_files(directory, manifest)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{manifest_path} is incomplete: {exc!r} missing or wrong") from None
    return manifest


def _check_file(directory: Path, relative: str, expected: str) -> Path:
    path = directory / relative
    if not path.is_file():
        raise BackupError(f"{path} is missing from the backup")
    if ddb.file_sha256(path) != expected:
        raise BackupError(
            f"{path} does not match its SHA-256 in {MANIFEST}: the backup is corrupted"
        )
    return path


def _check_files(directory: Path, manifest: dict) -> None:
    _check_file(directory, PG_FILE, manifest["postgres"]["sha256"])
    if not isinstance(manifest["postgres"]["tables"], dict):
        raise TypeError("postgres.tables")
    known = _models_by_name()
    for name, recorded in manifest["dynamodb"]["tables"].items():
        if not TABLE_NAME.match(name) or name not in known:
            raise BackupError(f"the backup has a DynamoDB table {name!r} this version lacks")
        path = _check_file(directory, f"{DDB_DIR}/{name}.jsonl.gz", recorded["sha256"])
        tally = ddb.tally_file(path, known[name])
        if tally.items != recorded["items"] or tally.checksum != recorded["checksum"]:
            raise BackupError(
                f"{path} holds {tally.items} items whose checksum differs from {MANIFEST} "
                f"({recorded['items']} items): the backup is corrupted"
            )


# --- Restore ----------------------------------------------------------------------------------


@dataclass
class Verification:
    pg_tables: int = 0
    pg_rows: int = 0
    dynamo_tables: int = 0
    dynamo_items: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


@contextmanager
def _restore_lock(db: pg.Database):
    """One restore into a database at a time; autocommit, so the checks hold no locks."""
    conn = db.connect()
    conn.autocommit = True
    try:
        query = "SELECT pg_try_advisory_lock(hashtext('ops.backup_restore'))"
        if not conn.execute(query).fetchone()[0]:
            raise BackupError(f"another restore into database {db.name!r} is running")
        yield conn
    finally:
        conn.close()


def _target_data(conn: psycopg.Connection, db: pg.Database) -> str:
    """What holds data in the target, in one phrase; empty when nothing does."""
    parts = []
    rows = pg.tables_with_rows(conn)
    if rows:
        parts.append(f"PostgreSQL database {db.name!r} has rows in {_some(rows)}")
    items = [
        model.Meta.table_name
        for model in registry.models()
        if ddb.table_has_items(model.Meta.table_name)
    ]
    if items:
        parts.append(f"DynamoDB has items in {_some(items)}")
    return "; ".join(parts)


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"{len(names)} tables ({shown}{more})" if len(names) > 1 else names[0]


def backup_restore(
    *,
    directory: Path,
    replace: bool = False,
    workers: int = 8,
    segments: int = 4,
    progress: ddb.Progress = _null_progress,
    report: Callable[[str], None] = lambda line: None,
    database: pg.Database | None = None,
) -> Verification:
    """Restore a checked backup into this environment's (empty) database and table prefix,
    then verify what is stored against the manifest. ``replace`` restores over existing
    data: PostgreSQL objects of the dump are dropped and recreated, DynamoDB tables emptied.
    ``database`` restores into another database than the configured one (the drill's).
    """
    manifest = backup_check(directory=directory)
    try:
        return _restore(
            manifest,
            Path(directory),
            db=database or pg.Database.from_django(),
            replace=replace,
            workers=workers,
            segments=segments,
            progress=progress,
            report=report,
        )
    except psycopg.Error as exc:
        raise BackupError(f"PostgreSQL failed during the restore: {pg.first_line(exc)}") from None
    except PynamoDBException as exc:
        raise BackupError(
            f"DynamoDB failed during the restore: {exc}; the restore did NOT complete"
        ) from None


def _restore(
    manifest: dict,
    directory: Path,
    *,
    db: pg.Database,
    replace: bool,
    workers: int,
    segments: int,
    progress: ddb.Progress,
    report: Callable[[str], None],
) -> Verification:
    known = _models_by_name()
    recorded = manifest["dynamodb"]["tables"]
    with _restore_lock(db) as conn:
        existing = _target_data(conn, db)
        if existing and not replace:
            raise BackupError(
                f"the target is not empty: {existing}; a restore goes into an empty "
                "environment (--yes replaces the data)"
            )
        has_tables = bool(pg.tables(conn))
        pg.restore(
            db, directory / PG_FILE, replace=replace or has_tables, major=pg.server_major(conn)
        )
        pg_recorded = manifest["postgres"]["tables"]
        report(
            f"postgres: restored {len(pg_recorded)} tables, "
            f"{sum(t['rows'] for t in pg_recorded.values())} rows into database {db.name!r}"
        )
        try:
            for name, model in known.items():
                if replace and ddb.table_has_items(model.Meta.table_name):
                    ddb.empty_table(model)
                if name in recorded:
                    ddb.import_table(
                        model,
                        directory / DDB_DIR / f"{name}.jsonl.gz",
                        workers=workers,
                        progress=progress,
                        total=recorded[name]["items"],
                    )
                else:
                    tables.ensure_table(model)
                    report(f"dynamodb: {model.Meta.table_name} is not in the backup: created empty")
        except BackupError as exc:
            raise BackupError(
                f"{exc}; PostgreSQL is restored but DynamoDB only in part: "
                "the restore did NOT complete"
            ) from None
        report(
            f"dynamodb: restored {len(recorded)} tables, "
            f"{sum(t['items'] for t in recorded.values())} items under prefix "
            f"{settings.DYNAMODB_TABLE_PREFIX!r}"
        )
    return environment_verify(manifest=manifest, segments=segments, database=db)


# --- Verify -------------------------------------------------------------------------------------


def environment_verify(
    *, manifest: dict, segments: int = 4, database: pg.Database | None = None
) -> Verification:
    """Row counts and checksums of what this environment stores (or ``database``, with
    this environment's tables), against a manifest."""
    result = Verification()
    with (database or pg.Database.from_django()).connect() as conn:
        actual = pg.checksums(conn)
    for label, expected in manifest["postgres"]["tables"].items():
        found = actual.pop(label, None)
        result.pg_tables += 1
        result.pg_rows += found["rows"] if found else 0
        if found is None:
            result.differences.append(f"postgres {label}: missing")
        elif found != expected:
            result.differences.append(
                f"postgres {label}: {found['rows']} rows, expected {expected['rows']}"
                + (", checksum differs" if found["rows"] == expected["rows"] else "")
            )
    for label, found in actual.items():
        if found["rows"]:
            result.differences.append(f"postgres {label}: {found['rows']} rows not in the backup")
    recorded = manifest["dynamodb"]["tables"]
    for name, model in _models_by_name().items():
        expected = recorded.get(name, {"items": 0, "checksum": ddb.Tally().checksum})
        tally = ddb.parallel_scan(model.Meta.table_name, segments=segments)
        result.dynamo_tables += 1
        result.dynamo_items += tally.items
        if (tally.items, tally.checksum) != (expected["items"], expected["checksum"]):
            result.differences.append(
                f"dynamodb {model.Meta.table_name}: {tally.items} items, expected "
                f"{expected['items']}"
                + (", checksum differs" if tally.items == expected["items"] else "")
            )
    return result
