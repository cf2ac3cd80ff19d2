"""The WSGI application: Django's handler, and a second one for API-key requests.

An API-key request (``Authorization: Api-Key ...`` or ``X-Api-Key`` under ``/api/``) is
authenticated by ``api.authentication.ApiKeyAuthentication`` or refused with a 401; it
never falls back to the session. So it runs through ``MIDDLEWARE`` without the browser's
pieces it never uses (:data:`BROWSER_ONLY`: the session, the CSRF check, which DRF makes
only for session authentication, the session user, messages). Everything else keeps: the
security headers (HSTS, nosniff, X-Frame-Options and the Content-Security-Policy: the API's
answers carry them on purpose), the request id, the request's log line and metrics, and
axes' middleware (one attribute read after the response; its lockout checks live in the
login backend, which an API key never reaches). Every other request, the API's session
users included, gets the whole ``MIDDLEWARE``. Each piece's CPU: ``bench/ingest.py
--profile`` and docs/benchmarks.md.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The web process only: a statement of a request is cancelled after this long (settings'
# DATABASE_STATEMENT_TIMEOUT_MS; Celery, beat and commands keep none unless it is set).
os.environ.setdefault(
    "DATABASE_STATEMENT_TIMEOUT_MS", os.environ.get("WEB_STATEMENT_TIMEOUT_MS", "5000")
)
browser_application = get_wsgi_application()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from api.authentication import presents_api_key  # noqa: E402

BROWSER_ONLY = frozenset(
    {
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    }
)


class ApiKeyHandler(WSGIHandler):
    """Django's handler with ``MIDDLEWARE`` less :data:`BROWSER_ONLY`."""

    def load_middleware(self, is_async=False):
        # Django reads the list from settings; it is swapped only while this handler is
        # built, once at start-up, before any request.
        whole = settings.MIDDLEWARE
        settings.MIDDLEWARE = [path for path in whole if path not in BROWSER_ONLY]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = whole


api_key_application = ApiKeyHandler()


def application(environ, start_response):
    if presents_api_key(environ):
        return api_key_application(environ, start_response)
    return browser_application(environ, start_response)
