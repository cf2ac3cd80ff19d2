"""Reading API clients."""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables

from .keys import is_well_formed, key_matches, key_prefix
from .models import ApiClient


@sensitive_variables("raw_key")
def api_client_for_key(raw_key: str) -> ApiClient | None:
    """The active client whose key this is, or ``None`` (unknown, inactive, malformed).

    One indexed read by prefix, then a constant-time comparison of the hashes.
    """
    if not is_well_formed(raw_key):
        return None
    client = ApiClient.objects.filter(key_prefix=key_prefix(raw_key)).first()
    if client is None or not key_matches(raw_key, client.key_hash) or not client.is_active:
        return None
    return client
