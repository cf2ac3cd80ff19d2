"""The scoped admin bases: the admin's one choke point for what a user may see.

They stay in accounts, beside the one scoping function (``accounts.scoping``), rather than
in ``core.admin``: every method here is a question to the branch hierarchy (the user's
branches, whether they see every branch, a model's ``SCOPE_BRANCH_PATH``), so a kernel copy
would be a shell of callbacks that accounts fills in. What knows no domain (the bounded
count, the deferred join, the lean rows, ASCII-only forms) is
``core.admin.base.LargeTableAdmin``, which ``ScopedModelAdmin`` builds on; the History page
is the view the audit app registers.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.db.models import Q

from core.admin.base import LargeTableAdmin

from .scoping import head_office_only, scope_queryset, sees_everything, visible_branch_ids


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


_history_views: dict[str, Callable] = {}


def register_history_view(view: Callable) -> None:
    """The app that keeps the change history (audit, in its ``AppConfig.ready()``) gives the
    History page of every scoped admin: ``view(model_admin, request, object_id,
    extra_context)``."""
    _history_views["object"] = view


class ScopedModelAdmin(LargeTableAdmin):
    """Rows, foreign-key choices and autocomplete results are scoped to the user's branches;
    the History page shows the object's audit trail (the view the audit app registers)."""

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
