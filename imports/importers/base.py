"""What every importer shares: its columns are the fields of a Django form (so the
template, the docs and the validation never disagree), cells are cleaned by that form,
a row is refused with one field and reason, and a row's branch must be in the actor's
scope (``accounts.scoping``: a branch user their branch, head office any).

An importer writes one row through the owning app's services inside the transaction (a
savepoint) the engine opened for it, and says what it did: created, updated or unchanged.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import Branch
from accounts.scoping import can_see_branch, visible_branch_ids

from ..exceptions import RowRefused
from ..models import ImportRowResult

CREATED = ImportRowResult.Status.CREATED
UPDATED = ImportRowResult.Status.UPDATED
UNCHANGED = ImportRowResult.Status.UNCHANGED
DATE_FORMATS = ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"]


# --- Cells ------------------------------------------------------------------------------


class MoneyCell(forms.DecimalField):
    """Rupees with at most two decimals; Indian or Western grouping commas and ₹ allowed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", Decimal("0"))
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str):
            value = value.replace(",", "").removeprefix("₹").strip()
        return super().to_python(value)


class DateCell(forms.DateField):
    def __init__(self, **kwargs):
        kwargs.setdefault("input_formats", DATE_FORMATS)
        super().__init__(**kwargs)


class CodeCell(forms.CharField):
    """A code or number as people type it: case and surrounding spaces do not matter."""

    def to_python(self, value):
        return super().to_python(value).strip().upper()


class ChoiceCell(forms.TypedChoiceField):
    """One of ``choices`` in any case; empty is ``default``."""

    def __init__(self, *, choices, default: str = "", **kwargs):
        self.default_choice = default
        kwargs.setdefault("required", not default)
        super().__init__(choices=[("", ""), *choices], **kwargs)

    def to_python(self, value):
        value = super().to_python(value).strip().upper()
        return value or self.default_choice

    def validate(self, value):
        if value == self.default_choice and not self.required:
            return
        super().validate(value)


class BoolCell(forms.CharField):
    TRUE = {"Y", "YES", "TRUE", "1"}
    FALSE = {"N", "NO", "FALSE", "0", ""}

    def to_python(self, value):
        text = super().to_python(value).strip().upper()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError("Write Y or N.")


# --- Importers --------------------------------------------------------------------------


class Importer:
    """One kind of row. Subclasses set ``kind``, ``title``, ``form_class`` (the columns, in
    the template's order, each with its help text), ``key_column`` (the natural key),
    ``examples`` (a value per column for the template's documentation) and ``write``."""

    kind: ClassVar[str]
    title: ClassVar[str]
    form_class: ClassVar[type[forms.Form]]
    key_column: ClassVar[str]
    examples: ClassVar[dict[str, str]]
    needs_actor: ClassVar[bool] = False
    takes_schedule: ClassVar[bool] = False  # a second file: the loans' schedules
    chunk_rows: ClassVar[int] = 0  # rows a transaction when not the engine's (set-based)

    def __init__(self, *, actor) -> None:
        self.actor = actor
        self._branches: dict[str, Branch | None] = {}
        self._form: forms.Form | None = None

    @classmethod
    def columns(cls) -> list[tuple[str, bool]]:
        """(key, required) of every column, in the template's order."""
        return [(name, field.required) for name, field in cls.form_class.base_fields.items()]

    @classmethod
    def header(cls) -> list[str]:
        return [name for name, _ in cls.columns()]

    def key_of(self, cells: dict[str, str]) -> str:
        return cells.get(self.key_column, "").strip().upper()[:60]

    def import_row(self, cells: dict[str, str]) -> str:
        """Validate the row's cells and write it: CREATED, UPDATED or UNCHANGED, or raise
        ``RowRefused``/``ValidationError``."""
        form = self.form_class(data=cells)
        if not form.is_valid():
            raise _first_error(form.errors.as_data())
        return self.write(form.cleaned_data)

    def write(self, data: dict[str, Any]) -> str | tuple[str, str]:
        """Write the row: its status, or (status, a note for the result file)."""
        raise NotImplementedError

    def clean_cells(self, cells: dict[str, str]) -> dict[str, Any] | None:
        """The row's cells cleaned by the importer's form, or None when one is refused. One
        form is bound again to each row (a set-based chunk validates thousands, and a new
        form copies its every field): the same fields, the same checks as ``import_row``."""
        if self._form is None:
            self._form = self.form_class(data=cells)
        else:
            self._form.data, self._form._errors = cells, None
        return self._form.cleaned_data if self._form.is_valid() else None

    def import_chunk(self, rows: list) -> list | None:
        """The set-based path: validate and write a whole chunk of rows at once and return
        each row's status (as ``write``), or return None having written nothing (a row
        would be refused, or the importer has no such path): the engine then imports the
        chunk row by row."""
        return None

    def prepare(self, run, schedule) -> None:
        """Before the rows of ``run`` (a resumed run too): read what the rows need."""

    def finish(self, run) -> None:
        """After the last row, in the transaction that marks the run done."""

    # --- helpers for subclasses ---

    def branch(self, code: str, field: str = "branch_code") -> Branch:
        """The branch of ``code``, which the actor must see."""
        if code not in self._branches:
            self._branches[code] = Branch.objects.filter(code=code).first()
        branch = self._branches[code]
        if branch is None:
            raise RowRefused(field, f"No branch has the code {code}.")
        self.check_scope(branch.pk, field)
        return branch

    def check_scope(self, branch_id: int, field: str) -> None:
        if self.actor is not None and not can_see_branch(self.actor, branch_id):
            raise RowRefused(field, "The row belongs to a branch outside yours.")

    def sees_everything(self) -> bool:
        return self.actor is None or visible_branch_ids(self.actor) is None


def first_error(exc: ValidationError) -> RowRefused:
    """A model's or a service's ``ValidationError`` as one refusal (its first field)."""
    if hasattr(exc, "error_dict"):
        return _first_error(exc.error_dict)
    return RowRefused("", " ".join(exc.messages))


def _first_error(errors: dict[str, list]) -> RowRefused:
    name, problems = next(iter(errors.items()))
    messages = []
    for problem in problems:
        messages.extend(problem.messages if isinstance(problem, ValidationError) else [problem])
    return RowRefused("" if name == "__all__" else name, " ".join(str(m) for m in messages))


def changed_fields(instance: models.Model, values: dict[str, Any]) -> list[str]:
    """The names of ``values`` that differ from ``instance``'s (set on it)."""
    changed = []
    for name, value in values.items():
        if _differs(getattr(instance, name), value):
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _differs(current, new) -> bool:
    if isinstance(current, Decimal) or isinstance(new, Decimal):
        try:
            return Decimal(current) != Decimal(new)
        except (InvalidOperation, TypeError):
            return True
    return current != new
