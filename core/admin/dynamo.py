"""The base of the admin's read-only screens over DynamoDB (the transaction browser, the
posting queue, the audit browser, the notification outbox).

Such a screen sits on a model with no rows of its own (a proxy, or an unmanaged model) so
that the admin gives it an index entry, URLs and permissions; its pages read DynamoDB
through the app's selectors and page with DynamoDB's cursors, not with a ``ChangeList``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.urls import path

from .base import BackOfficeModelAdmin, ReadOnlyAdminMixin, admin_page_context


class DynamoAdmin(ReadOnlyAdminMixin, BackOfficeModelAdmin):
    """A read-only admin screen over DynamoDB: one list URL of its own (the changelist's
    name, so the index links to it), served by ``changelist_view``. Who may open it:
    :meth:`can_view` (``view_permission`` unless a subclass decides otherwise)."""

    view_permission: str = ""
    page_size = 50

    def can_view(self, request) -> bool:
        return bool(self.view_permission) and request.user.has_perm(self.view_permission)

    def require_view(self, request) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def has_module_permission(self, request) -> bool:
        return self.can_view(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self.can_view(request)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="{}_{}_changelist".format(*info),
            )
        ]

    def page_context(self, request, title: str, **extra) -> dict:
        """The admin's context for one of this screen's pages."""
        return admin_page_context(self, request, title, **extra)


def next_page_url(params: QueryDict, token: str | None, *, name: str = "cursor") -> str | None:
    """The query string of the next page: these parameters with DynamoDB's cursor (the
    last evaluated key, as the selector encodes it) under ``name``; None on the last page."""
    if not token:
        return None
    params = params.copy()
    params[name] = token
    return f"?{params.urlencode()}"
