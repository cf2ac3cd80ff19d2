"""/api/: the schema, its docs and version 1 of the API.

Each app plugs its endpoints into ``v1/`` with its own ``<app>/api/urls.py``. The last
pattern answers any other /api/ URL with a JSON 404: keep it last.
"""

from django.urls import include, path, re_path

from .exceptions import not_found
from .views import ApiDocsView, ApiSchemaView

app_name = "api"

urlpatterns = [
    path("schema/", ApiSchemaView.as_view(), name="schema"),
    path("docs/", ApiDocsView.as_view(), name="docs"),
    path("v1/", include("loans.api.urls")),
    path("v1/", include("payments.api.urls")),
    path("v1/", include("mandates.api.urls")),
    # Keep last: any other /api/ URL is a JSON 404 (never Django's HTML page).
    re_path(r"", not_found),
]
