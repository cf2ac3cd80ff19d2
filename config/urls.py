from django.contrib import admin
from django.urls import include, path

from ops.metrics import metrics_view

urlpatterns = [
    path("health/", include("ops.urls")),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("reconciliation/", include("reconciliation.urls")),
    path("api/", include("api.urls")),
    path("approvals/", include("approvals.urls")),
    path("mandates/", include("mandates.urls")),
    path("desk/", include("desk.urls")),
]

# Django's error views: JSON under /api/ (the API's error format), the normal pages elsewhere.
handler400 = "api.exceptions.handler400"
handler403 = "api.exceptions.handler403"
handler404 = "api.exceptions.handler404"
handler500 = "api.exceptions.handler500"
