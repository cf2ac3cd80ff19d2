from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("health/", include("ops.urls")),
    path("admin/", admin.site.urls),
    path("reconciliation/", include("reconciliation.urls")),
]
