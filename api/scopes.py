"""What an API client may do: a fixed set of scopes, granted per client in the admin.

A view declares which scope each HTTP method needs (see :mod:`api.permissions`).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError

TRANSACTIONS_WRITE = "transactions:write"
TRANSACTIONS_READ = "transactions:read"
LOANS_READ = "loans:read"
PARTNER_RESULTS = "partner:results"

SCOPE_CHOICES = [
    (TRANSACTIONS_WRITE, "transactions:write: record payment transactions"),
    (TRANSACTIONS_READ, "transactions:read: read payment transactions"),
    (LOANS_READ, "loans:read: read loan accounts"),
    (PARTNER_RESULTS, "partner:results: post a banking partner's results"),
]
ALL_SCOPES = frozenset(scope for scope, _label in SCOPE_CHOICES)


def validate_scopes(value: Iterable[str]) -> None:
    """A list of known scope names (a model field validator)."""
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValidationError("Scopes must be a list of scope names.", code="invalid")
    unknown = sorted(set(value) - ALL_SCOPES)
    if unknown:
        raise ValidationError(
            "Unknown scope(s): %(unknown)s. Known: %(known)s.",
            code="unknown_scope",
            params={"unknown": ", ".join(unknown), "known": ", ".join(sorted(ALL_SCOPES))},
        )
