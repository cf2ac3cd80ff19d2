"""API-key authentication for integrations; browser users keep Django's session.

A client sends its key as ``Authorization: Api-Key <key>`` (or ``X-Api-Key: <key>``).
An unknown, inactive or malformed key is a 401 (``not_authenticated``) and never falls
back to the session. The request then acts as an :class:`api.principal.ApiPrincipal`
(``request.user``), and ``request.auth`` is the :class:`api.models.ApiClient`.

Settings: ``DEFAULT_AUTHENTICATION_CLASSES = [ApiKeyAuthentication, SessionAuthentication]``.
The key class comes first so that a missing credential answers 401 with
``WWW-Authenticate: Api-Key`` (DRF asks the first class for that header). Session
requests are CSRF-checked by DRF's ``SessionAuthentication`` as usual; key requests are not.
"""

from __future__ import annotations

import dataclasses

from django.views.decorators.debug import sensitive_variables
from rest_framework import authentication, exceptions

from core import context

from .principal import ApiPrincipal
from .selectors import api_client_for_key, api_client_remember_use
from .services import api_client_touch

KEYWORD = "Api-Key"
HEADER = "X-Api-Key"
INVALID_KEY = "Invalid or inactive API key."


def presents_api_key(environ) -> bool:
    """Whether a WSGI request under /api/ presents an API key (well-formed or not): it is
    then answered by its key alone, never by a session (``config.wsgi`` spares it the
    browser's middleware)."""
    return environ.get("PATH_INFO", "").startswith("/api/") and (
        environ.get("HTTP_AUTHORIZATION", "")[: len(KEYWORD) + 1].lower() == "api-key "
        or "HTTP_X_API_KEY" in environ
    )


class ApiKeyAuthentication(authentication.BaseAuthentication):
    # An error while checking a key is reported with each frame's variables (the mail to
    # ADMINS, error trackers): these and every frame called from here show "****" instead.
    @sensitive_variables("raw_key", "header", "parts", "value")
    def authenticate(self, request):
        raw_key = self.get_raw_key(request)
        if raw_key is None:
            return None
        client = api_client_for_key(raw_key)
        if client is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        used = client.last_used_at
        api_client_touch(client=client)
        if client.last_used_at != used:
            api_client_remember_use(client)
        principal = ApiPrincipal(client)
        self._act_as(request, principal)
        return principal, client

    @staticmethod
    def _act_as(request, principal: ApiPrincipal) -> None:
        """Audit events of this request name the client. The middleware bound the request
        context with the session's (anonymous) user and resets it after the response; a
        request that did not pass the middleware (a test factory) binds nothing, so that
        no context outlives its request."""
        ctx = context.current()
        request_id = getattr(request._request, "request_id", None)
        if request_id and ctx.request_id == request_id:
            context.bind(dataclasses.replace(ctx, user=principal))

    def authenticate_header(self, request) -> str:
        return f'{KEYWORD} realm="api"'

    @staticmethod
    def get_raw_key(request) -> str | None:
        """The key the request presents, ``None`` when it presents none; a header that
        says ``Api-Key`` but is malformed is refused here."""
        header = request.META.get("HTTP_AUTHORIZATION", "")
        parts = header.split()
        if parts and parts[0].lower() == KEYWORD.lower():
            if len(parts) != 2:
                raise exceptions.AuthenticationFailed(
                    f"Malformed Authorization header: use 'Authorization: {KEYWORD} <key>'."
                )
            return parts[1]
        if "HTTP_X_API_KEY" in request.META:
            value = request.META["HTTP_X_API_KEY"].strip()
            if not value or len(value.split()) != 1:
                raise exceptions.AuthenticationFailed(f"Malformed {HEADER} header.")
            return value
        return None
