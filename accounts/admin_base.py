"""The base of every back-office ModelAdmin: one scoping choke point, and changelists
that stay fast on tables of millions of rows."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections, models
from django.db.models import Q
from django.utils.functional import cached_property

from core.forms import AsciiDateField, AsciiDecimalField, AsciiIntegerField, AsciiModelChoiceField

from .scoping import head_office_only, scope_queryset, sees_everything, visible_branch_ids


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to ``EXACT_UP_TO`` rows (a bounded count), and beyond that
    uses the planner's estimate instead of a full ``COUNT(*)`` over a large table."""

    EXACT_UP_TO = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
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


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A foreign-key filter that offers only what the user may see (e.g. their branches).
    Of a model with ``is_active`` (branches), only the active ones are offered, and the
    chosen one: a closed branch's rows stay reachable by search and by its filter URL, but
    do not lengthen every list's sidebar."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        queryset = related._default_manager.all()
        if hasattr(related, "SCOPE_BRANCH_PATH"):
            queryset = scope_queryset(queryset, request.user)
        if any(f.name == "is_active" for f in related._meta.fields):
            chosen = [v for v in self.lookup_val or () if str(v).isdigit()]
            queryset = queryset.filter(Q(is_active=True) | Q(pk__in=chosen))
        return [(obj.pk, str(obj)) for obj in queryset]


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


_history_views: dict[str, Callable] = {}


def register_history_view(view: Callable) -> None:
    """The app that keeps the change history (audit, in its ``AppConfig.ready()``) gives the
    History page of every scoped admin: ``view(model_admin, request, object_id,
    extra_context)``."""
    _history_views["object"] = view


class ScopedModelAdmin(BackOfficeModelAdmin):
    """Rows, foreign-key choices and autocomplete results are scoped to the user's branches;
    the History page shows the object's audit trail (the view the audit app registers)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Django's "Show counts" counts every filter choice over the whole filtered table:
    # seconds on a million rows, so never offered.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    # Rows from accounts.admin_rows: Django's HTML with the per-column work done once a page.
    lean_rows = False

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if self.lean_rows and not self.change_list_template:
            self.change_list_template = "admin/lean_change_list.html"

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user)

    def history_view(self, request, object_id, extra_context=None):
        view = _history_views.get("object")
        if view is None:
            return super().history_view(request, object_id, extra_context)
        return view(self, request, object_id, extra_context)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if "queryset" not in kwargs and hasattr(related, "SCOPE_BRANCH_PATH"):
            kwargs["queryset"] = scope_queryset(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        branch_ids = visible_branch_ids(request.user)
        if (
            branch_ids
            and len(branch_ids) == 1
            and "branch" in {f.name for f in self.model._meta.fields}
        ):
            initial.setdefault("branch", next(iter(branch_ids)))
        return initial


class HeadOfficeAdmin(ScopedModelAdmin):
    """Read-only data that spans branches (a statement upload, a daily job, a presentation
    batch): only users who see every branch see it. Others have no view permission here
    (not in their sidebar, 403), whatever their role's permissions, and the queryset is
    empty for them as well."""

    def has_view_permission(self, request, obj=None) -> bool:
        return sees_everything(request.user) and super().has_view_permission(request, obj)

    def get_queryset(self, request):
        return head_office_only(admin.ModelAdmin.get_queryset(self, request), request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
