"""The bases of the back-office's ModelAdmins that know no domain: forms that take ASCII
digits only, changelists that stay fast on tables of millions of rows, and
:func:`money_column` (a list's money in the one format, right-aligned).

What rows a user sees is the domain's: ``accounts.admin_base.ScopedModelAdmin`` builds on
:class:`LargeTableAdmin` with the one scoping function.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.paginator import Paginator
from django.db import connections, models
from django.utils.functional import cached_property
from django.utils.html import format_html

from core.forms import AsciiDateField, AsciiDecimalField, AsciiIntegerField, AsciiModelChoiceField
from core.money import inr

MONEY_COLUMN_PREFIX = "money_"  # templates/admin/base_site.html right-aligns these columns


def money_column(field: str, description: str | None = None):
    """A ``list_display`` entry showing the money field ``field`` as every screen shows
    money (₹1,23,456.00), right-aligned (its column's class starts with ``money_``)."""

    def column(obj):
        return format_html('<span class="money">{}</span>', inr(getattr(obj, field)))

    column.__name__ = f"{MONEY_COLUMN_PREFIX}{field}"
    column.short_description = description or field.replace("_", " ")
    return column


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to ``EXACT_UP_TO`` rows (a bounded count), and beyond that
    uses the planner's estimate instead of a full ``COUNT(*)`` over a large table.

    With ``one_page_first`` (a search: usually a few rows) it first reads the ids of a
    page and one more; when they are all there are, they are the count and the rows
    (``all_ids``, read by :class:`LargeTableChangeList`), so the search runs once, not
    once to count and again for the rows; when there are more, they are page 1's ids."""

    EXACT_UP_TO = 10_000

    def __init__(self, *args, one_page_first: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.one_page_first = one_page_first and not self.orphans
        self.all_ids: list | None = None
        self._first_page_ids: list | None = None

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if self.one_page_first:
            ids = list(queryset.values_list("pk", flat=True)[: self.per_page + 1])
            self._first_page_ids = ids[: self.per_page]  # page 1 needs no second look
            if len(ids) <= self.per_page:
                self.all_ids = ids
                return len(ids)
        bounded = queryset.order_by()[: self.EXACT_UP_TO + 1].count()
        if bounded <= self.EXACT_UP_TO:
            return bounded
        return max(bounded, planner_estimate(queryset))

    def page(self, number):
        """A deferred join: find the page's ids on the index alone, then fetch (and join)
        only those rows, instead of joining every row that OFFSET skips."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        queryset = self.object_list
        if number == 1 and self._first_page_ids is not None:
            ids = self._first_page_ids
        else:
            ids = list(queryset.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        rows = {obj.pk: obj for obj in queryset.filter(pk__in=ids)}
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)


def planner_estimate(queryset) -> int:
    sql, params = queryset.order_by().query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class BackOfficeModelAdmin(admin.ModelAdmin):
    """The base of every ModelAdmin of the back-office (a test walks the admin site):
    the money, number, date and foreign-key fields of its forms take ASCII digits only,
    with a field message for any other (``core.forms``)."""

    formfield_overrides = {
        models.DecimalField: {"form_class": AsciiDecimalField},
        models.IntegerField: {"form_class": AsciiIntegerField},
        models.BigIntegerField: {"form_class": AsciiIntegerField},
        models.DateField: {"form_class": AsciiDateField},
        models.ForeignKey: {"form_class": AsciiModelChoiceField},
        models.OneToOneField: {"form_class": AsciiModelChoiceField},
    }


class ReadOnlyAdminMixin:
    """Put first in the bases of a ModelAdmin or an inline whose rows only their services
    make: nothing to add, change or delete here; viewing follows the view permission."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class LargeTableChangeList(ChangeList):
    """A list that fits on one page whose ids the paginator read already
    (``EstimatedCountPaginator.all_ids``) fetches its rows by those ids."""

    def get_results(self, request):
        super().get_results(request)
        ids = getattr(self.paginator, "all_ids", None)
        if ids is not None and not self.multi_page:
            self.result_list = self.queryset.filter(pk__in=ids)


class LargeTableAdmin(BackOfficeModelAdmin):
    """A changelist over a table that may hold millions of rows: a bounded count and a
    deferred join (:class:`EstimatedCountPaginator`), no second count of the whole table,
    50 rows a page, and with ``lean_rows = True`` the rows of ``core.admin.rows``."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Django's "Show counts" counts every filter choice over the whole filtered table:
    # seconds on a million rows, so never offered.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    # Rows from core.admin.rows: Django's HTML with the per-column work done once a page.
    lean_rows = False

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if self.lean_rows and not self.change_list_template:
            self.change_list_template = "admin/lean_change_list.html"

    def get_changelist(self, request, **kwargs):
        return LargeTableChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        searched = bool(request.GET.get(SEARCH_VAR, "").strip())
        return self.paginator(
            queryset, per_page, orphans, allow_empty_first_page, one_page_first=searched
        )


def is_set_filter(field: str, title: str, yes: str, no: str) -> type[admin.SimpleListFilter]:
    """A list filter on whether a nullable field is set (``?<title>=yes|no``), e.g. a
    charge's ``waived_at``: "Waived" / "Not waived"."""

    class IsSetFilter(admin.SimpleListFilter):
        parameter_name = title

        def lookups(self, request, model_admin):
            return [("yes", yes), ("no", no)]

        def queryset(self, request, queryset):
            if self.value() in ("yes", "no"):
                return queryset.filter(**{f"{field}__isnull": self.value() == "no"})
            return queryset

    IsSetFilter.title = title
    IsSetFilter.__name__ = f"{title.capitalize()}Filter"
    return IsSetFilter


def admin_page_context(model_admin, request, title: str, **extra) -> dict:
    """The admin's context for a page of ``model_admin``'s own (not a changelist or change
    form): the site's frame, the title, the model's options for the crumbs."""
    request.current_app = model_admin.admin_site.name
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": model_admin.opts,
        **extra,
    }
