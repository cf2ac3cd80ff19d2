"""A URLconf for the tests: the real admin, plus a site whose Branch admin has the audit
history (accounts' own admin adopts the mixin in its own time)."""

from django.contrib import admin
from django.urls import path

from accounts.models import Branch
from accounts.scoping import scope_queryset
from audit.admin import AuditHistoryAdminMixin

history_site = admin.AdminSite(name="history_admin")


@admin.register(Branch, site=history_site)
class BranchHistoryAdmin(AuditHistoryAdminMixin, admin.ModelAdmin):
    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("history-admin/", history_site.urls),
]
