"""The data migration of a per-app status-history table into ``core.StatusChange``.

Used by the migrations that retire ``MandateTransition``, ``DcrHistory`` and ``DbsHistory``:
one INSERT ... SELECT per table (times, actors and remarks preserved, in the old order),
and its reverse."""

from __future__ import annotations

COLUMNS = "from_status, to_status, actor_id, at, remarks"


def _tables(apps, old_model: str, subject_model: str) -> tuple[str, int, str]:
    app_label, old_name = old_model.split(".")
    subject_app, subject_name = subject_model.split(".")
    content_type, _ = apps.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label=subject_app, model=subject_name.lower()
    )
    old_table = apps.get_model(app_label, old_name)._meta.db_table
    return old_table, content_type.pk, apps.get_model("core", "StatusChange")._meta.db_table


def copy_forward(apps, schema_editor, *, old_model: str, subject_model: str, fk: str) -> None:
    """``old_model`` ("mandates.MandateTransition") rows, whose ``fk`` points at
    ``subject_model`` ("mandates.Mandate"), become StatusChange rows of that subject."""
    old_table, content_type_id, new_table = _tables(apps, old_model, subject_model)
    schema_editor.execute(
        f"INSERT INTO {new_table} (content_type_id, object_id, {COLUMNS}) "  # noqa: S608
        f"SELECT %s, {fk}_id, {COLUMNS} FROM {old_table} ORDER BY id",
        [content_type_id],
    )


def copy_backward(apps, schema_editor, *, old_model: str, subject_model: str, fk: str) -> None:
    old_table, content_type_id, new_table = _tables(apps, old_model, subject_model)
    schema_editor.execute(
        f"INSERT INTO {old_table} ({fk}_id, {COLUMNS}) "  # noqa: S608
        f"SELECT object_id, {COLUMNS} FROM {new_table} WHERE content_type_id = %s "
        "ORDER BY at, id",
        [content_type_id],
    )
    schema_editor.execute(
        f"DELETE FROM {new_table} WHERE content_type_id = %s",  # noqa: S608
        [content_type_id],
    )
