"""``HasScope``: one permission class for API clients and browser users alike.

A view declares, per HTTP method, the scope an API client needs and the Django model
permission a session user needs::

    class TransactionViewSet(...):
        permission_classes = [HasScope]
        required_scopes = {"GET": scopes.TRANSACTIONS_READ, "POST": scopes.TRANSACTIONS_WRITE}
        required_perms = {"GET": "payments.view_transaction", "POST": "payments.add_transaction"}

Rules:

- Not authenticated: 401 (``not_authenticated``).
- An API client (``request.user.is_api_client``) needs ``required_scopes[method]``.
- A session user needs ``required_perms[method]`` (``user.has_perm``; superusers have all).
- A value may be one name or a list/tuple of names: all of them are needed.
- HEAD and OPTIONS need what GET needs.
- A method the view handles but does not declare is refused (403): forgetting a
  declaration closes the door rather than opening it. A method the view does not handle
  at all is let through to DRF's 405. A view without both mappings is a programming error
  (ImproperlyConfigured, so a 500).
- What an allowed caller may *see* is decided separately by
  :func:`accounts.scoping.scope_queryset` in the view's selector.

Refusals are 403 ``permission_denied`` through the API's exception handler.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission

SAME_AS_GET = {"HEAD", "OPTIONS"}


def _needed(mapping: Mapping[str, str | list[str] | tuple[str, ...]], method: str):
    method = "GET" if method in SAME_AS_GET and method not in mapping else method
    needed = mapping.get(method)
    if needed is None:
        return None
    return [needed] if isinstance(needed, str) else list(needed)


class HasScope(BasePermission):
    message = "You do not have permission to perform this action."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        scopes = getattr(view, "required_scopes", None)
        perms = getattr(view, "required_perms", None)
        if scopes is None or perms is None:
            raise ImproperlyConfigured(
                f"{type(view).__name__} uses HasScope but does not declare both "
                "required_scopes and required_perms"
            )
        implemented = getattr(view, "allowed_methods", None)
        if implemented is not None and request.method not in implemented:
            return True  # the view does not handle it at all: DRF answers 405
        if getattr(user, "is_api_client", False):
            needed = _needed(scopes, request.method)
            if needed is None:
                return False
            missing = [scope for scope in needed if not user.has_scope(scope)]
            if missing:
                self.message = f"This API key lacks the scope {', '.join(missing)}."
                return False
            return True
        needed = _needed(perms, request.method)
        return needed is not None and user.has_perms(needed)
