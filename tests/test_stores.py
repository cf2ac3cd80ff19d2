"""The suite's own resetting of the stores (tests/stores.py): only what a test wrote is
emptied, nothing it wrote is left, and a flush leaves the database as a truncate did."""

from __future__ import annotations

import subprocess
import threading
import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import ROLES
from audit.ddb_models import AuditEventItem
from dynamo.connection import boto3_client
from loans.models import LoanAccount
from sessions_ddb.ddb_models import SessionItem
from tests.stores import EVERY_TABLE, DynamoWrites, empty_written, written_tables
from tests.world import build_world


@pytest.mark.parametrize(
    ("operation", "params", "tables"),
    [
        ("GetItem", {"TableName": "t"}, set()),
        ("Query", {"TableName": "t"}, set()),
        ("Scan", {"TableName": "t"}, set()),
        ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "t"}}]}, set()),
        ("PutItem", {"TableName": "t"}, {"t"}),
        ("UpdateItem", {"TableName": "t"}, {"t"}),
        ("DeleteItem", {"TableName": "t"}, {"t"}),
        ("BatchWriteItem", {"RequestItems": {"a": [], "b": []}}, {"a", "b"}),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "a"}},
                    {"ConditionCheck": {"TableName": "b"}},
                ]
            },
            {"a", "b"},
        ),
        ("TransactWriteItems", {"TransactItems": [{"Put": {}}]}, {EVERY_TABLE}),
        ("ExecuteStatement", {"Statement": "DELETE FROM t"}, {EVERY_TABLE}),
    ],
)
def test_written_tables_are_those_a_call_may_change_and_every_table_when_unknown(
    operation, params, tables
):
    assert written_tables(operation, params) == tables


def _session(key: str) -> SessionItem:
    from django.utils import timezone

    return SessionItem(
        key,
        session_data="x",
        expires_at=timezone.now() + timezone.timedelta(hours=1),
        updated_at=timezone.now(),
    )


def test_writes_of_pynamodb_boto3_and_other_threads_are_noted_reads_are_not():
    writes = DynamoWrites()
    with writes.watching():
        key = uuid.uuid4().hex
        _session(key).save()
        assert writes.take() == {SessionItem.Meta.table_name}
        SessionItem.get(key)
        list(AuditEventItem.scan(limit=1))
        assert writes.take() == set()

        client = boto3_client()
        client.delete_item(
            TableName=AuditEventItem.Meta.table_name,
            Key={"entity": {"S": "none#0"}, "sk": {"S": "0#0"}},
        )
        thread = threading.Thread(target=lambda: _session(uuid.uuid4().hex).save())
        thread.start()
        thread.join()
        assert writes.take() == {AuditEventItem.Meta.table_name, SessionItem.Meta.table_name}


def test_a_started_process_counts_as_a_write_to_every_table():
    writes = DynamoWrites()
    with writes.watching():
        subprocess.run(["true"], check=True)
    assert writes.take() == {EVERY_TABLE}


def test_after_the_watch_nothing_is_noted():
    writes = DynamoWrites()
    with writes.watching():
        pass
    _session(uuid.uuid4().hex).save()
    assert writes.take() == set()


def test_only_the_written_tables_are_emptied_and_all_of_their_items_go():
    writes = DynamoWrites()
    kept = uuid.uuid4().hex
    with writes.watching():
        with writes.unwatched():  # as if written by another test, already cleaned up
            _session(kept).save()
        assert writes.take() == set()
        boto3_client().put_item(
            TableName=AuditEventItem.Meta.table_name,
            Item={"entity": {"S": f"test#{uuid.uuid4().hex}"}, "sk": {"S": "0#0"}},
        )
        assert empty_written(writes) == [AuditEventItem.Meta.table_name]
        assert list(AuditEventItem.scan()) == []
        assert SessionItem.get(kept).session_key == kept  # its table was not written: kept
        assert writes.take() == set()  # the emptying's own deletes are not noted

        writes.note({EVERY_TABLE})
        assert sorted(empty_written(writes)) == sorted(
            [AuditEventItem.Meta.table_name, SessionItem.Meta.table_name, *_others()]
        )
        assert list(SessionItem.scan()) == []


def _others() -> list[str]:
    from dynamo import registry

    return [
        model.Meta.table_name
        for model in registry.models()
        if model not in (AuditEventItem, SessionItem)
    ]


def _row_counts() -> dict[str, int]:
    tables = connection.introspection.django_table_names(only_existing=True)
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - Django's table names
            counts[table] = cursor.fetchone()[0]
    return counts


REFILLED_BY_POST_MIGRATE = {
    "django_content_type",
    "auth_permission",
    "auth_group",
    "auth_group_permissions",
    "core_outboxmessage",  # the roles' audit events, on their way to DynamoDB
}


@pytest.mark.django_db(transaction=True)
def test_a_flush_empties_every_table_keeps_the_sequences_and_brings_the_roles_back():
    world = build_world()
    last_loan = world.loans["far"].pk
    assert _row_counts()["loans_loanaccount"] == 3

    with CaptureQueriesContext(connection) as queries:  # as a transactional test's teardown
        call_command("flush", interactive=False, verbosity=0, reset_sequences=False)

    statements = [q["sql"] for q in queries]
    assert 'DELETE FROM "loans_loanaccount";' in statements
    assert not [sql for sql in statements if "TRUNCATE" in sql]

    counts = _row_counts()
    assert {table for table, n in counts.items() if n} == REFILLED_BY_POST_MIGRATE
    assert set(Group.objects.values_list("name", flat=True)) == set(ROLES)
    assert Group.objects.get(name="Admin").permissions.count() == Permission.objects.count()
    assert build_world().loans["own"].pk > last_loan  # as TRUNCATE without RESTART IDENTITY
    assert LoanAccount.objects.count() == 3
