"""PostgreSQL side of a backup: the server's own tools, a shared snapshot, table checksums."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from . import BackupError

# Fixed output formats, so that a row's text (and so its checksum) does not depend on the
# session: the same data gives the same checksum on any server and in any session.
CHECKSUM_SESSION = (
    "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres "
    "-c extra_float_digits=3 -c bytea_output=hex"
)

TABLES_SQL = """
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
      AND NOT EXISTS (
          SELECT 1 FROM pg_depend d
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
      )
    ORDER BY 1, 2
"""

# Two 64-bit halves of each row's MD5, summed: independent of row order, streamed by the
# server (no sort, no giant string).
CHECKSUM_SQL = """
    SELECT count(*),
           coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),
           coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)
    FROM (SELECT md5(t::text) AS h FROM {table} AS t) AS rows
"""


@dataclass(frozen=True)
class Database:
    """Where a database is; ``env()`` is for pg_dump and pg_restore (no password in argv)."""

    name: str
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    sslmode: str = ""

    @classmethod
    def from_django(cls, alias: str = "default") -> Database:
        from django.db import connections

        conf = connections[alias].settings_dict
        return cls(
            name=conf["NAME"],
            host=conf.get("HOST") or "",
            port=str(conf.get("PORT") or ""),
            user=conf.get("USER") or "",
            password=conf.get("PASSWORD") or "",
            sslmode=(conf.get("OPTIONS") or {}).get("sslmode", ""),
        )

    def env(self) -> dict[str, str]:
        values = {
            "PGDATABASE": self.name,
            "PGHOST": self.host,
            "PGPORT": self.port,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGSSLMODE": self.sslmode,
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return base | {k: v for k, v in values.items() if v}

    def connect(self, *, options: str = CHECKSUM_SESSION) -> psycopg.Connection:
        params = {
            "dbname": self.name,
            "host": self.host or None,
            "port": self.port or None,
            "user": self.user or None,
            "password": self.password or None,
            "sslmode": self.sslmode or None,
        }
        try:
            return psycopg.connect(
                **{k: v for k, v in params.items() if v}, options=options, connect_timeout=10
            )
        except psycopg.OperationalError as exc:
            raise BackupError(
                f"cannot connect to PostgreSQL database {self.name!r}: {first_line(exc)}"
            ) from None


def first_line(exc: BaseException | str) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# --- The server's tools -----------------------------------------------------------------


def _tool_major(path: str) -> int | None:
    try:
        out = subprocess.run(  # noqa: S603 - a PostgreSQL program found on this machine
            [path, "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s*(\d+)", out)
    return int(match.group(1)) if match else None


def pg_tool(name: str, server_major: int) -> str:
    """``pg_dump`` or ``pg_restore`` that can work with this server: the same major version
    if installed (Debian keeps each under /usr/lib/postgresql/<major>/bin, as bin/services
    finds initdb), else the oldest newer one. An older one refuses a newer server's dump."""
    candidates = set(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    on_path = shutil.which(name)
    if on_path:
        candidates.add(os.path.realpath(on_path))
    usable = sorted(
        (major, path)
        for path in candidates
        if (major := _tool_major(path)) is not None and major >= server_major
    )
    if not usable:
        raise BackupError(
            f"no {name} for PostgreSQL {server_major} or newer is installed; install "
            f"postgresql-client-{server_major}"
        )
    exact = [path for major, path in usable if major == server_major]
    return exact[0] if exact else usable[0][1]


def server_major(conn: psycopg.Connection) -> int:
    return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


# --- Tables, counts, checksums ------------------------------------------------------------


def tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [tuple(row) for row in conn.execute(TABLES_SQL).fetchall()]


def table_label(schema: str, name: str) -> str:
    return f"{schema}.{name}"


def table_checksum(conn: psycopg.Connection, schema: str, name: str) -> dict:
    query = sql.SQL(CHECKSUM_SQL).format(table=sql.Identifier(schema, name))
    count, high, low = conn.execute(query).fetchone()
    digest = hashlib.sha256(f"{count}:{high}:{low}".encode()).hexdigest()
    return {"rows": int(count), "checksum": digest}


def checksums(conn: psycopg.Connection) -> dict[str, dict]:
    return {
        table_label(schema, name): table_checksum(conn, schema, name)
        for schema, name in tables(conn)
    }


def tables_with_rows(conn: psycopg.Connection) -> list[str]:
    found = []
    for schema, name in tables(conn):
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {table})").format(
            table=sql.Identifier(schema, name)
        )
        if conn.execute(query).fetchone()[0]:
            found.append(table_label(schema, name))
    return found


# --- Snapshot and dump --------------------------------------------------------------------


@dataclass
class Snapshot:
    """An open REPEATABLE READ transaction whose snapshot pg_dump shares."""

    conn: psycopg.Connection
    snapshot_id: str
    taken_at: str
    wal_lsn: str
    server_version: str
    server_major: int


def snapshot_open(db: Database) -> Snapshot:
    conn = db.connect()
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    snapshot_id, taken_at, lsn, version, version_num = conn.execute(
        "SELECT pg_export_snapshot(),"
        " to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
        "  ELSE pg_current_wal_lsn() END)::text,"
        " current_setting('server_version'), current_setting('server_version_num')::int"
    ).fetchone()
    return Snapshot(conn, snapshot_id, taken_at, lsn, version, version_num // 10000)


def dump_start(db: Database, snapshot: Snapshot, path: Path) -> subprocess.Popen:
    """Start pg_dump on the snapshot; ``dump_finish`` waits for it."""
    tool = pg_tool("pg_dump", snapshot.server_major)
    return subprocess.Popen(  # noqa: S603 - our own argument list
        [tool, "--format=custom", "--no-password", f"--snapshot={snapshot.snapshot_id}",
         f"--file={path}"],
        env=db.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def dump_finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise BackupError(f"pg_dump failed: {first_line(stderr or 'no message')}")


def tool_version(name: str, major: int) -> str:
    tool = pg_tool(name, major)
    return subprocess.run(  # noqa: S603 - a PostgreSQL program found on this machine
        [tool, "--version"], capture_output=True, text=True, timeout=10
    ).stdout.strip()


# --- Restore ------------------------------------------------------------------------------


def restore(db: Database, dump: Path, *, replace: bool, major: int) -> None:
    """pg_restore in one transaction: all of the dump or nothing."""
    tool = pg_tool("pg_restore", major)
    args = [tool, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
            "--no-password", f"--dbname={db.name}"]  # fmt: skip
    if replace:
        args += ["--clean", "--if-exists"]
    result = subprocess.run(  # noqa: S603 - our own argument list
        [*args, str(dump)], env=db.env(), capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BackupError(
            "pg_restore failed, nothing restored in PostgreSQL: "
            f"{first_line(result.stderr or 'no message')}"
        )
