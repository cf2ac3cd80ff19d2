"""Backup and restore, round trip: PostgreSQL and DynamoDB Local, real pg_dump and pg_restore.

The backup is taken in-process from the test database and the run's table prefix; restores
run ``manage.py backup_restore`` as an operator would, into a new database on the same
server and a new table prefix, both dropped afterwards.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from backup.dynamodb import file_sha256
from backup.services import environment_verify
from core.outbox import outbox_relay
from dynamo import registry, tables
from dynamo.connection import boto3_client
from payments.ddb_models import TransactionItem
from payments.models import Posting
from payments.services import payment_ingest, payments_post_due
from sessions_ddb.backend import SessionStore
from tests.factories import UserFactory, make_loan, payment

ROOT = Path(__file__).resolve().parents[2]
SESSION = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3"
BIG_PAISE = 123456789012345678  # beyond a float's 53 bits: must come back digit for digit

pytestmark = pytest.mark.django_db(transaction=True)


# --- Data, environments -------------------------------------------------------------------


@pytest.fixture
def business_data():
    """Loans with schedules, payments ingested and posted (transactions, keys, queue items,
    postings, receipts), audit events relayed to DynamoDB, a web session."""
    principal = UserFactory(is_superuser=True)
    loans = [make_loan() for _ in range(3)]
    for n, loan in enumerate(loans):
        for i in range(2):
            payment_ingest(
                payment=payment(loan, amount=f"{1500 + 100 * i}.50", receipt_number=f"R-{n}-{i}"),
                idempotency_key=f"backup-{n}-{i}",
                principal=principal,
                source="test",
            )
    assert payments_post_due()["posted"] == 6
    payment_ingest(  # one left RECEIVED, its queue item READY
        payment=payment(loans[0], amount="99.00"),
        idempotency_key="backup-pending",
        principal=principal,
        source="test",
    )
    outbox_relay()
    big = next(iter(TransactionItem.scan(limit=1)))
    big.update(actions=[TransactionItem.amount_paise.set(BIG_PAISE)])
    session = SessionStore()
    session["purpose"] = "backup test"
    session.create()
    return loans


def _admin_connect(dbname: str) -> psycopg.Connection:
    conf = connection.settings_dict
    return psycopg.connect(
        dbname=dbname,
        host=conf["HOST"] or None,
        port=conf["PORT"] or None,
        user=conf["USER"] or None,
        password=conf["PASSWORD"] or None,
        options=SESSION,
        autocommit=True,
    )


@pytest.fixture
def empty_env():
    """A new, empty database on the same server and a new table prefix; dropped after."""
    name = f"backup_target_{uuid.uuid4().hex[:10]}"
    prefix = f"restore_{uuid.uuid4().hex[:8]}_"
    with _admin_connect("postgres") as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"database": name, "prefix": prefix}
    finally:
        with _admin_connect("postgres") as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with override_settings(DYNAMODB_TABLE_PREFIX=prefix):
            tables.delete_all()


def _restore(env: dict, directory: Path, *args: str) -> subprocess.CompletedProcess:
    """``manage.py backup_restore`` in its own process, configured for ``env`` only."""
    conf = connection.settings_dict
    auth = quote(conf["USER"] or "", safe="")
    if conf["PASSWORD"]:
        auth += ":" + quote(conf["PASSWORD"], safe="")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        DATABASE_URL=f"postgres://{auth}@{conf['HOST']}:{conf['PORT']}/{env['database']}",
        REDIS_URL=settings.REDIS_URL,
        DYNAMODB_ENDPOINT=settings.DYNAMODB_ENDPOINT or "",
        DYNAMODB_REGION=settings.DYNAMODB_REGION,
        DYNAMODB_TABLE_PREFIX=env["prefix"],
    )
    if settings.DYNAMODB_ACCESS_KEY:
        environment["AWS_ACCESS_KEY_ID"] = settings.DYNAMODB_ACCESS_KEY
        environment["AWS_SECRET_ACCESS_KEY"] = settings.DYNAMODB_SECRET_KEY
    return subprocess.run(
        [sys.executable, "manage.py", "backup_restore", str(directory), *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _backup(tmp_path: Path) -> tuple[Path, dict]:
    directory = tmp_path / "backup"
    call_command("backup_create", "--output", str(directory))
    return directory, json.loads((directory / "manifest.json").read_text())


# --- Independent comparison (not the module's own checksums) --------------------------------


def _pg_contents(dbname: str) -> dict:
    """Every table's rows as sorted text, and every sequence's position."""
    with _admin_connect(dbname) as conn:
        names = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        contents = {}
        for schema, table in names:
            count, digest = conn.execute(
                psycopg.sql.SQL(
                    "SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) "
                    "FROM {} AS t"
                ).format(psycopg.sql.Identifier(schema, table))
            ).fetchone()
            contents[f"{schema}.{table}"] = (count, digest)
        for schema, sequence, value in conn.execute(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences"
        ):
            contents[f"sequence {schema}.{sequence}"] = value
    return contents


def _ddb_items(prefix: str) -> dict[str, list[str]]:
    client = boto3_client()
    found = {}
    for model in registry.models():
        name = prefix + model.Meta.base_table_name
        items, kwargs = [], {"TableName": name, "ConsistentRead": True}
        while True:
            page = client.scan(**kwargs)
            items += [json.dumps(item, sort_keys=True) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found[model.Meta.base_table_name] = sorted(items)
    return found


def _table_names(prefix: str) -> list[str]:
    names = boto3_client().list_tables()["TableNames"]
    return [name for name in names if name.startswith(prefix)]


def _rewrite_item(directory: Path, table: str, change) -> None:
    path = directory / "dynamodb" / f"{table}.jsonl.gz"
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    item = json.loads(lines[0])
    change(item)
    lines[0] = json.dumps(item, sort_keys=True, separators=(",", ":"))
    with gzip.open(path, "wt") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


def _one_line(exc: CommandError) -> str:
    message = str(exc)
    assert "\n" not in message
    return message


# --- Round trip ------------------------------------------------------------------------------


def test_round_trip_restores_identical_data_into_an_empty_environment(
    business_data, tmp_path, empty_env
):
    directory, manifest = _backup(tmp_path)
    source_pg = _pg_contents(connection.settings_dict["NAME"])
    source_ddb = _ddb_items(settings.DYNAMODB_TABLE_PREFIX)

    assert manifest["postgres"]["tables"]["public.payments_posting"]["rows"] == 6
    assert manifest["postgres"]["tables"]["public.loans_loanaccount"]["rows"] == 3
    recorded = manifest["dynamodb"]["tables"]
    assert recorded["transactions"]["items"] == 7
    assert recorded["txn_queue"]["items"] == 7
    assert recorded["dedup"]["items"] == 7
    assert recorded["sessions"]["items"] == 1
    assert recorded["audit_events"]["items"] >= 6  # customers, loans, schedules, ...
    assert manifest["window"]["from"] <= manifest["dynamodb"]["scan_started_at"]
    assert sorted(recorded) == sorted(m.Meta.base_table_name for m in registry.models())

    result = _restore(empty_env, directory)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("verified: ")
    assert _pg_contents(empty_env["database"]) == source_pg
    restored = _ddb_items(empty_env["prefix"])
    assert restored == source_ddb
    assert any(f'"N": "{BIG_PAISE}"' in item for item in restored["transactions"])
    client = boto3_client()
    table = client.describe_table(TableName=f"{empty_env['prefix']}transactions")["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "branch_day",
        "loan_account",
    }
    ttl = client.describe_time_to_live(TableName=f"{empty_env['prefix']}dedup")
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_a_backup_is_refused_into_a_directory_with_files(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(CommandError) as raised:
        call_command("backup_create", "--output", str(tmp_path / "taken"))
    assert _one_line(raised.value).endswith("already exists and is not an empty directory")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # no partial directory left


def test_a_failed_backup_is_one_line_and_leaves_no_directory(tmp_path):
    missing = override_settings(DYNAMODB_TABLE_PREFIX=f"missing_{uuid.uuid4().hex[:8]}_")
    with missing, pytest.raises(CommandError) as raised:
        call_command("backup_create", "--output", str(tmp_path / "backup"))
    assert "ResourceNotFoundException" in _one_line(raised.value)
    assert list(tmp_path.iterdir()) == []


# --- Refusals -----------------------------------------------------------------------------------


def test_restore_refuses_a_database_with_rows(business_data, tmp_path):
    directory, manifest = _backup(tmp_path)
    postings = Posting.objects.count()
    with pytest.raises(CommandError) as raised:
        call_command("backup_restore", str(directory))
    message = _one_line(raised.value)
    assert message.startswith("the target is not empty: PostgreSQL database ")
    assert "--yes" in message
    assert Posting.objects.count() == postings
    assert environment_verify(manifest=manifest).ok


def test_restore_refuses_dynamodb_tables_with_items_and_writes_nothing(
    business_data, tmp_path, empty_env
):
    directory, _ = _backup(tmp_path)
    target = dict(empty_env, prefix=settings.DYNAMODB_TABLE_PREFIX)  # this run's full tables

    result = _restore(target, directory)

    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "DynamoDB has items in " in result.stderr
    assert "PostgreSQL database" not in result.stderr  # the new database is empty
    assert _pg_contents(empty_env["database"]) == {}


def test_a_tampered_file_is_refused_before_anything_is_restored(business_data, tmp_path, empty_env):
    directory, _ = _backup(tmp_path)
    _rewrite_item(directory, "transactions", lambda item: item["amount_paise"].update(N="1"))

    result = _restore(empty_env, directory)

    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "transactions.jsonl.gz does not match its SHA-256" in result.stderr
    assert _pg_contents(empty_env["database"]) == {}
    assert _table_names(empty_env["prefix"]) == []


def test_a_changed_item_with_a_forged_file_hash_fails_the_item_checksum(business_data, tmp_path):
    directory, manifest = _backup(tmp_path)
    _rewrite_item(directory, "txn_queue", lambda item: item["attempts"].update(N="9"))
    manifest["dynamodb"]["tables"]["txn_queue"]["sha256"] = file_sha256(
        directory / "dynamodb" / "txn_queue.jsonl.gz"
    )
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CommandError) as raised:
        call_command("backup_restore", str(directory))
    assert "txn_queue.jsonl.gz holds 7 items whose checksum differs" in _one_line(raised.value)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: shutil.rmtree(d), "is not a backup directory (no such directory)"),
        (lambda d: (d / "manifest.json").unlink(), "has no manifest.json"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "cannot be read"),
        (lambda d: (d / "manifest.json").write_text("[]"), "is not the manifest of a"),
        (lambda d: (d / "postgres.dump").unlink(), "postgres.dump is missing from the backup"),
        (
            lambda d: (d / "dynamodb" / "dedup.jsonl.gz").write_bytes(b"garbage"),
            "dedup.jsonl.gz does not match its SHA-256",
        ),
    ],
    ids=["no directory", "no manifest", "bad manifest", "foreign manifest", "no dump", "garbage"],
)
def test_a_bad_backup_directory_is_one_line(tmp_path, damage, expected):
    directory, _ = _backup(tmp_path)
    damage(directory)
    with pytest.raises(CommandError) as raised:
        call_command("backup_restore", str(directory))
    assert expected in _one_line(raised.value)


def test_verification_names_a_changed_row_and_a_changed_item(business_data, tmp_path):
    _, manifest = _backup(tmp_path)
    assert environment_verify(manifest=manifest).ok
    posting = Posting.objects.first()
    Posting.objects.filter(pk=posting.pk).update(mode="UPI" if posting.mode != "UPI" else "NEFT")
    txn = TransactionItem.get(posting.txn_id)
    txn.update(actions=[TransactionItem.collector.set("someone else")])

    result = environment_verify(manifest=manifest)

    assert not result.ok
    assert result.differences == [
        "postgres public.payments_posting: 6 rows, expected 6, checksum differs",
        f"dynamodb {TransactionItem.Meta.table_name}: 7 items, expected 7, checksum differs",
    ]


# --- Replacing data with --yes ------------------------------------------------------------------


def test_yes_replaces_changed_data_and_reports_rows_the_backup_lacks(
    business_data, tmp_path, empty_env
):
    directory, _ = _backup(tmp_path)
    assert _restore(empty_env, directory).returncode == 0
    with _admin_connect(empty_env["database"]) as target:
        target.execute("UPDATE payments_posting SET mode = 'UPI'")
    boto3_client().put_item(
        TableName=f"{empty_env['prefix']}transactions", Item={"txn_id": {"S": "stray"}}
    )

    refused = _restore(empty_env, directory)
    assert refused.returncode == 1
    assert "the target is not empty" in refused.stderr

    replaced = _restore(empty_env, directory, "--yes")
    assert replaced.returncode == 0, replaced.stderr
    assert _pg_contents(empty_env["database"]) == _pg_contents(connection.settings_dict["NAME"])
    assert _ddb_items(empty_env["prefix"]) == _ddb_items(settings.DYNAMODB_TABLE_PREFIX)

    with _admin_connect(empty_env["database"]) as target:
        target.execute("CREATE TABLE public.extra (note text)")
        target.execute("INSERT INTO public.extra VALUES ('not in the backup')")
    differs = _restore(empty_env, directory, "--yes")
    assert differs.returncode == 1
    assert "postgres public.extra: 1 rows not in the backup" in differs.stdout
    assert differs.stderr.strip().endswith(
        "the restored data differs from the backup (1 difference, listed above)"
    )
