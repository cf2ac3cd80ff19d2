"""Every write to API clients goes through these services.

The raw key is returned once by :func:`api_client_create` and :func:`api_client_rotate_key`
for the caller to show to whoever asked for it; it is never stored, logged or audited
(the audit trail records ``key_hash`` as ``***``).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from accounts.models import Branch, User

from .keys import generate_key, hash_key, key_prefix
from .models import ApiClient

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


@transaction.atomic
def api_client_create(
    *,
    name: str,
    kind: str = ApiClient.Kind.INTEGRATION,
    scopes: Iterable[str] = (),
    allowed_branches: Iterable[Branch] = (),
    all_branches: bool = False,
    banking_partner: Model | None = None,  # a loans.BankingPartner
    actor,
) -> tuple[ApiClient, str]:
    """Create a client and its first key. Returns ``(client, raw_key)``: show the key once."""
    allowed_branches = list(allowed_branches)
    _ensure_valid_branches(all_branches=all_branches, allowed_branches=allowed_branches)
    client = ApiClient(
        name=name,
        kind=kind,
        scopes=sorted(set(scopes)),
        all_branches=all_branches,
        banking_partner=banking_partner,
        created_by=actor if isinstance(actor, User) and actor.pk else None,
    )
    raw_key = _new_key(client)
    client.full_clean()
    client.save()
    client.allowed_branches.set(allowed_branches)
    logger.info("API client %r created with key prefix %s", client.name, client.key_prefix)
    return client, raw_key


@transaction.atomic
def api_client_update(
    *, client_id: int, actor, allowed_branches: Iterable[Branch] | None = None, **changes
) -> ApiClient:
    """Change a client (its name, kind, partner, scopes, branches, whether it is active)
    under the row's lock; its key stays. ``allowed_branches`` None: they do not change.
    Audited by the change tracking."""
    client = ApiClient.objects.select_for_update().get(pk=client_id)
    for name, value in changes.items():
        setattr(client, name, sorted(set(value)) if name == "scopes" else value)
    branches = list(client.allowed_branches.all() if allowed_branches is None else allowed_branches)
    _ensure_valid_branches(all_branches=client.all_branches, allowed_branches=branches)
    client.full_clean()
    client.save()
    if allowed_branches is not None:
        client.allowed_branches.set(branches)
    return client


def api_client_branch_problems(*, all_branches: bool, allowed_branches) -> dict[str, str]:
    """Why a client cannot see these branches, by field (the admin's form shows them)."""
    if all_branches and allowed_branches:
        return {"allowed_branches": "A client that sees all branches needs no list of branches."}
    return {}


def _ensure_valid_branches(*, all_branches: bool, allowed_branches) -> None:
    problems = api_client_branch_problems(
        all_branches=all_branches, allowed_branches=allowed_branches
    )
    if problems:
        raise ValidationError(problems)


@transaction.atomic
def api_client_rotate_key(*, client_id: int, actor) -> str:
    """Replace a client's key: the old key stops working at once. Returns the new raw key."""
    client = ApiClient.objects.select_for_update().get(pk=client_id)
    old_prefix = client.key_prefix
    raw_key = _new_key(client)
    client.save(update_fields=["key_prefix", "key_hash"])
    logger.info(
        "API client %r: key rotated (prefix %s -> %s)", client.name, old_prefix, client.key_prefix
    )
    return raw_key


@transaction.atomic
def api_client_deactivate(*, client_id: int, actor) -> ApiClient:
    """Switch a client off: its key is refused from the next request. Idempotent."""
    client = ApiClient.objects.select_for_update().get(pk=client_id)
    if client.is_active:
        client.is_active = False
        client.save(update_fields=["is_active"])
        logger.info("API client %r deactivated", client.name)
    return client


def api_client_touch(*, client: ApiClient) -> None:
    """Record that a client was just used, at most once a minute (keeps authentication to
    one read on most requests). Not audited: it is usage, not a change."""
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if client.last_used_at is not None and client.last_used_at > stale:
        return
    ApiClient.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)).filter(
        pk=client.pk
    ).update(last_used_at=now)
    client.last_used_at = now


def _new_key(client: ApiClient) -> str:
    """Give ``client`` a fresh key (prefix and hash) and return the raw key."""
    while True:
        raw_key = generate_key()
        prefix = key_prefix(raw_key)
        # 48 random bits: a clash is very unlikely, and then we simply draw again
        if not ApiClient.objects.filter(key_prefix=prefix).exists():
            break
    client.key_prefix = prefix
    client.key_hash = hash_key(raw_key)
    return raw_key
