"""The rows of a large changelist, rendered with the per-column work done once a page.

Django's ``items_for_result`` works out, for every cell of every row, the field, its CSS
classes, whether it links, the empty-value text and the change URL (a ``reverse`` and,
with filters on, a parse of the query string). On the loan list that is about a quarter of
the page's CPU. ``lean_results`` plans the columns once and then formats each cell with
the same Django functions (``display_for_field``, ``display_for_value``), so the HTML is
the same byte for byte (core/tests/test_admin_rows.py compares the two on every column
type the lists use). A ``LargeTableAdmin`` (``core.admin.base``) opts in with
``lean_rows = True`` (its changelist template becomes ``admin/lean_change_list.html``, in
core/templates); list_editable and popup lists, and a column it does not know, keep
Django's renderer.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape

from django.contrib.admin.templatetags.admin_list import (
    ResultList,
    _coerce_field_name,
    results,
)
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_field, display_for_value
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.urls import NoReverseMatch
from django.utils.safestring import SafeData, mark_safe

_PK_MARK = "9182736450"  # stands for the pk while the change URL is worked out once a page


def _text(value) -> str:
    """What ``format_html`` does to an argument: escape unless already safe."""
    return str(value) if isinstance(value, SafeData) else escape(str(value))


def _blank(value):
    return "" if isinstance(value, str) and value.strip() == "" else value


@dataclass(frozen=True)
class _Column:
    tag: str  # th or td
    plain: str  # the opening tag without "nowrap", as after a missing related object
    cell: Callable[[models.Model], tuple[str, str]]  # (opening tag, escaped content)
    link: bool


def _field_cell(field: models.Field, empty: str, avoid_link: bool, opening: str) -> Callable:
    if isinstance(field.remote_field, models.ManyToOneRel):
        name = field.name

        def cell(obj):
            related = getattr(obj, name)
            return opening, _text(empty if related is None else related)

        return cell
    attname = field.attname

    def cell(obj):
        value = _blank(getattr(obj, attname))
        return opening, _text(display_for_field(value, field, empty, avoid_link))

    return cell


def _admin_method_cell(method, empty: str, opening: str, nowrap: str) -> Callable:
    """A ModelAdmin method column, shown as ``items_for_result`` shows a value without a
    field (a date or time gets ``nowrap``)."""
    empty = getattr(method, "empty_value_display", empty)
    boolean = getattr(method, "boolean", False)

    def cell(obj):
        value = _blank(method(obj))
        dated = isinstance(value, (datetime.date, datetime.time))
        return (nowrap if dated else opening), _text(display_for_value(value, empty, boolean))

    return cell


def _plan(cl) -> list[_Column] | None:
    """The columns of this page, or None when one of them needs Django's own renderer."""
    model_admin, opts = cl.model_admin, cl.lookup_opts
    empty = model_admin.get_empty_value_display()
    columns, first = [], True
    for index, name in enumerate(cl.list_display):
        if cl.list_display_links is None:
            link = False
        elif first and not cl.list_display_links:
            link = True
        else:
            link = name in cl.list_display_links
        tag = "th" if link and first else "td"
        first = first and not link
        css = f"field-{_coerce_field_name(name, index)}"
        plain, nowrap = f'<{tag} class="{css}">', f'<{tag} class="{css} nowrap">'
        try:
            field = opts.get_field(name)
        except FieldDoesNotExist:
            field = None
        if field is not None and not field.auto_created and not field.many_to_many:
            dated = isinstance(field, (models.DateField, models.TimeField, models.ForeignKey))
            cell = _field_cell(field, empty, link, nowrap if dated else plain)
        elif (
            field is None
            and name != "action_checkbox"
            and callable(getattr(model_admin, name, None))
        ):
            cell = _admin_method_cell(getattr(model_admin, name), empty, plain, nowrap)
        else:
            return None
        columns.append(_Column(tag, plain, cell, link))
    return columns


def _change_url(cl) -> Callable[[models.Model], str] | None:
    """The escaped change URL of a row, from one ``reverse`` a page (integer keys)."""
    if cl.to_field or not isinstance(cl.lookup_opts.pk, (models.AutoField, models.BigAutoField)):
        return None
    try:
        url = cl.url_for_result(cl.lookup_opts.model(pk=int(_PK_MARK)))
    except NoReverseMatch:
        return None
    url = add_preserved_filters({"preserved_filters": cl.preserved_filters, "opts": cl.opts}, url)
    before, _mark, after = url.partition(_PK_MARK)
    before, after = escape(before), escape(after)
    return lambda obj: f"{before}{obj.pk}{after}"


def lean_results(cl) -> Iterator[ResultList]:
    """The rows of ``cl`` as ``results`` yields them: Django's own for list_editable and
    popup lists, for a ModelAdmin without ``lean_rows`` and for a column not planned."""
    columns = change_url = None
    if getattr(cl.model_admin, "lean_rows", False) and not cl.formset and not cl.is_popup:
        columns = _plan(cl)
        change_url = _change_url(cl) if columns is not None else None
    if columns is None or change_url is None:
        yield from results(cl)
        return
    empty = _text(cl.model_admin.get_empty_value_display())
    for obj in cl.result_list:
        row = []
        for column in columns:
            try:
                opening, content = column.cell(obj)
            except ObjectDoesNotExist:
                opening, content = column.plain, empty
            if column.link:
                content = f'<a href="{change_url(obj)}">{content}</a>'
            row.append(mark_safe(f"{opening}{content}</{column.tag}>"))  # noqa: S308 - parts escaped
        yield ResultList(None, row)
