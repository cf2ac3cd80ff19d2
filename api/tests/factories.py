"""API clients for tests, created through the service (so keys are real)."""

from __future__ import annotations

import itertools

from api import scopes as api_scopes
from api.models import ApiClient
from api.services import api_client_create

_names = itertools.count(1)


def make_api_client(
    *,
    scopes=(api_scopes.LOANS_READ,),
    branches=(),
    all_branches=False,
    kind=ApiClient.Kind.INTEGRATION,
    banking_partner=None,
    name=None,
) -> tuple[ApiClient, str]:
    """``(client, raw_key)``."""
    return api_client_create(
        name=name or f"Integration {next(_names)}",
        kind=kind,
        scopes=scopes,
        allowed_branches=branches,
        all_branches=all_branches,
        banking_partner=banking_partner,
        actor=None,
    )


def key_header(raw_key: str) -> dict[str, str]:
    """Test-client kwargs that send ``Authorization: Api-Key <key>``."""
    return {"HTTP_AUTHORIZATION": f"Api-Key {raw_key}"}
