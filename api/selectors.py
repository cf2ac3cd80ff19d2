"""Reading API clients.

An API client is read on every request that presents a key, so the row and its allowed
branches are one raw query, and the answer is kept in this process for
``API_CLIENT_CACHE_SECONDS`` (5 by default; 0 reads every time). A change of a client
(``api.services``: update, rotate, deactivate; the admin; a delete; its branches) empties
this process's cache at once and again when it commits, so a revoked key is refused from
the next request here. Another process may still accept it until its own entry expires:
that is the window in production, ``API_CLIENT_CACHE_SECONDS`` at most.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.views.decorators.debug import sensitive_variables

from .keys import is_well_formed, key_matches, key_prefix
from .models import ApiClient

# the columns read, in the order of the query; the allowed branches come after them
_COLUMNS = ApiClient._meta.concrete_fields
_FIELDS = tuple(field.attname for field in _COLUMNS)

# key prefix -> (column values, allowed branch ids, time.monotonic() when read)
_cache: dict[str, tuple[tuple, frozenset[int], float]] = {}
_lock = threading.Lock()


@sensitive_variables("raw_key")
def api_client_for_key(raw_key: str) -> ApiClient | None:
    """The active client whose key this is, or ``None`` (unknown, inactive, malformed),
    with ``allowed_branch_ids`` (the ids of its allowed branches) set.

    One indexed read by prefix (or none, from the cache), then a constant-time comparison
    of the hashes.
    """
    if not is_well_formed(raw_key):
        return None
    prefix = key_prefix(raw_key)
    found = _cached(prefix)
    if found is None:
        return None
    values, branch_ids = found
    client = ApiClient.from_db(DEFAULT_DB_ALIAS, _FIELDS, values)
    client.allowed_branch_ids = branch_ids
    if not key_matches(raw_key, client.key_hash) or not client.is_active:
        return None
    return client


def _cached(prefix: str) -> tuple[tuple, frozenset[int]] | None:
    seconds = settings.API_CLIENT_CACHE_SECONDS
    entry = _cache.get(prefix)
    if entry is not None and time.monotonic() - entry[2] < seconds:
        return entry[0], entry[1]
    read_at = time.monotonic()
    found = _read(prefix)
    if found is not None and seconds > 0:
        with _lock:
            _cache[prefix] = (*found, read_at)
    return found


def _read(prefix: str) -> tuple[tuple, frozenset[int]] | None:
    table = ApiClient._meta.db_table
    through = ApiClient.allowed_branches.through._meta
    columns = ", ".join(f'c."{name}"' for name in _FIELDS)
    sql = (
        f'SELECT {columns}, ARRAY(SELECT a."branch_id" FROM "{through.db_table}" a '  # noqa: S608 - tables and columns of the models
        f'WHERE a."apiclient_id" = c."id") FROM "{table}" c WHERE c."key_prefix" = %s'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    # as the ORM would read them (the scopes' JSON comes from psycopg as text)
    values = tuple(
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(_COLUMNS, row, strict=False)
    )
    return values, frozenset(row[-1])


def api_client_remember_use(client: ApiClient) -> None:
    """Keep the cached row's ``last_used_at`` as :func:`api.services.api_client_touch`
    set it, so that the next requests of the minute do not touch it again."""
    prefix = client.key_prefix
    with _lock:
        entry = _cache.get(prefix)
        if entry is not None:
            values = tuple(getattr(client, name) for name in _FIELDS)
            _cache[prefix] = (values, entry[1], entry[2])


def api_clients_changed(**kwargs) -> None:
    """A client or its branches changed: forget every cached client now (a request of
    another transaction in this process may cache the old row before the commit) and again
    when the change commits."""
    _forget()
    transaction.on_commit(_forget, using=kwargs.get("using") or DEFAULT_DB_ALIAS)


def _forget() -> None:
    with _lock:
        _cache.clear()
