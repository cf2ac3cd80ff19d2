"""The OpenAPI schema and its Swagger UI (served from drf-spectacular-sidecar's static
files: no CDN). Both need an authenticated caller (SPECTACULAR_SETTINGS SERVE_PERMISSIONS):
staff with their admin session, or a client with its key. The UI's start-up script is
its own same-origin URL (``?script``), not inline, for the Content-Security-Policy."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer


class JsonErrorsMixin:
    """For views whose renderer is not JSON (YAML, HTML): their errors are JSON all the same."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class ApiSchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


class ApiDocsView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    url_name = "api:schema"

    def handle_exception(self, exc):
        # A person in a browser who is not logged in goes to the admin login and back.
        if isinstance(exc, exceptions.NotAuthenticated):
            query = urlencode({"next": self.request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('admin:login')}?{query}")
        return super().handle_exception(exc)
