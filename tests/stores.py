"""How the suite puts its stores back between tests, cheaply (see the root conftest).

DynamoDB: every DynamoDB call of this process (PynamoDB's and boto3's, from any thread:
the live server's, the embedded Celery worker's) goes through botocore's
``BaseClient._make_api_call``, or, sent by hand, ``dynamo.wire.WireClient.call``;
:class:`DynamoWrites` notes the tables that a call other
than a read names, and after a test only those tables are emptied (a scan of each of the
eight tables after each test was about a tenth of the suite's time). A call that names no
table it can read, or a process started by the test (a subprocess may write with this
run's prefix), makes it empty them all, as before.

PostgreSQL: a transactional test's teardown flushes the test database. Django flushes
with one ``TRUNCATE`` of every table, which costs PostgreSQL new files for each table and
index (about 2 s on the CI machine, for tables of a few rows); :func:`sql_flush_by_delete`
deletes the rows instead, in the flush's one transaction, where the foreign keys (Django
makes them deferrable, initially deferred) are checked at its commit, when every table is
empty. Same end state: empty tables, sequences left where they are (as by
``reset_sequences=False``, the default); the roles, content types and permissions are
then put back by ``post_migrate`` as before.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from botocore.client import BaseClient

from dynamo import registry
from dynamo.wire import WireClient

READS = frozenset(
    {
        "BatchGetItem",
        "DescribeContinuousBackups",
        "DescribeEndpoints",
        "DescribeLimits",
        "DescribeTable",
        "DescribeTimeToLive",
        "GetItem",
        "ListBackups",
        "ListTables",
        "ListTagsOfResource",
        "Query",
        "Scan",
        "TransactGetItems",
    }
)
EVERY_TABLE = "*"


def written_tables(operation: str, params: dict) -> set[str]:
    """The tables a DynamoDB call may change: none for a read; ``{EVERY_TABLE}`` when the
    call names no table that can be read from its parameters."""
    if operation in READS:
        return set()
    if "TableName" in params:
        return {params["TableName"]}
    if "RequestItems" in params:  # BatchWriteItem
        return set(params["RequestItems"])
    if "TransactItems" in params:  # TransactWriteItems
        return {
            action["TableName"]
            for item in params["TransactItems"]
            for action in item.values()
            if "TableName" in action
        } or {EVERY_TABLE}
    return {EVERY_TABLE}


class DynamoWrites:
    """The tables written since :meth:`take` was last called (see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: set[str] = set()
        self._unwatched = threading.local()

    def note(self, tables: Iterable[str]) -> None:
        if getattr(self._unwatched, "on", False):
            return
        with self._lock:
            self._tables.update(tables)

    def take(self) -> set[str]:
        with self._lock:
            tables, self._tables = self._tables, set()
        return tables

    @contextmanager
    def unwatched(self) -> Iterator[None]:
        """This thread's calls are not noted (the emptying's own deletes)."""
        self._unwatched.on = True
        try:
            yield
        finally:
            self._unwatched.on = False

    @contextmanager
    def watching(self) -> Iterator[DynamoWrites]:
        original_call = BaseClient._make_api_call
        original_wire = WireClient.call
        original_popen = subprocess.Popen.__init__
        writes = self

        def make_api_call(client, operation_name, params):
            if client.meta.service_model.service_name == "dynamodb":
                writes.note(written_tables(operation_name, params))
            return original_call(client, operation_name, params)

        def wire_call(client, operation_name, body):
            writes.note(written_tables(operation_name, body))
            return original_wire(client, operation_name, body)

        def popen(process, *args, **kwargs):
            writes.note({EVERY_TABLE})
            original_popen(process, *args, **kwargs)

        BaseClient._make_api_call = make_api_call
        WireClient.call = wire_call
        subprocess.Popen.__init__ = popen
        try:
            yield self
        finally:
            BaseClient._make_api_call = original_call
            WireClient.call = original_wire
            subprocess.Popen.__init__ = original_popen


def sql_flush_by_delete(original):
    """``DatabaseOperations.sql_flush`` that deletes rows rather than truncating tables."""

    def sql_flush(ops, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return original(
                ops, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        return [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(ops.quote_name(table))};"
            for table in tables
        ]

    return sql_flush


def empty_table(model) -> None:
    """Delete every item of a PynamoDB model's table (reading only the keys)."""
    key_names = [
        name
        for name, attr in model.get_attributes().items()
        if attr.is_hash_key or attr.is_range_key
    ]
    with model.batch_write() as batch:
        for item in model.scan(attributes_to_get=key_names):
            batch.delete(item)


def empty_written(writes: DynamoWrites) -> list[str]:
    """Empty the tables written since the last call (all of them after a subprocess);
    returns their names. The emptying's own deletes are not noted."""
    written = writes.take()
    emptied = []
    with writes.unwatched():
        for model in registry.models():
            if EVERY_TABLE in written or model.Meta.table_name in written:
                empty_table(model)
                emptied.append(model.Meta.table_name)
    return emptied
