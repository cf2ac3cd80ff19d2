"""Rows written in bulk with PostgreSQL's ``COPY`` (psycopg 3's ``cursor.copy``), and ids
reserved from a table's own sequence beforehand, so that rows written by ``COPY`` can refer
to each other (a loan's instalments to the loan) without a round trip a row.

``COPY`` sends no signal and runs no model validation: the caller has validated the rows,
and writes their audit events itself (``audit.services.audit_creates_add``)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections, models


def reserve_ids(model: type[models.Model], count: int, *, using: str = "default") -> list[int]:
    """``count`` new ids from ``model``'s id sequence (those an insert would take)."""
    if not count:
        return []
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def model_columns(model: type[models.Model]) -> list[str]:
    """Every concrete field's attribute name (``customer_id``), in the model's order."""
    return [f.attname for f in model._meta.concrete_fields]


def model_values(instance: models.Model) -> tuple:
    """An instance's values in ``model_columns`` order (for ``copy_rows``)."""
    return tuple(getattr(instance, f.attname) for f in instance._meta.concrete_fields)


def copy_rows(
    model: type[models.Model],
    columns: list[str],
    rows: Iterable[tuple],
    *,
    using: str = "default",
) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows``, each a tuple in ``columns``' order
    (field attribute names); psycopg adapts each value by its type (wrap JSON in
    ``psycopg.types.json.Jsonb``). In the caller's transaction: a failing constraint raises
    ``IntegrityError`` and none of the rows is written."""
    connection = connections[using]
    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(column).column) for column in columns)
    sql = f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN"  # names from the model
    # the driver's errors as Django's (IntegrityError), as for a query
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
