"""Reading API clients.

An API client is read on every request that presents a key, so its row and its allowed
branches are one raw query, cached as reference data (``refdata.cache``, namespace
:data:`API_CLIENTS`): a hit is one Redis round trip and no SQL. A change of a client
(``api.services``: update, rotate, deactivate; the admin; a delete; its branches) gives
the namespace a new version when it commits, so every process refuses a revoked or
rotated key from its next request; the changing transaction reads PostgreSQL. With Redis
down every request reads PostgreSQL (see ``refdata.cache`` for a change committed while
Redis was unreachable).
"""

from __future__ import annotations

import threading

from django.db import DEFAULT_DB_ALIAS, connection
from django.views.decorators.debug import sensitive_variables

from refdata import cache as refdata

from .keys import is_well_formed, key_matches, key_prefix
from .models import ApiClient

API_CLIENTS = "api_client"

# the columns read, in the order of the query; the allowed branches come after them.
# ``last_used_at`` is not cached: it changes once a minute (see ``api_client_remember_use``).
_COLUMNS = [f for f in ApiClient._meta.concrete_fields if f.attname != "last_used_at"]
_FIELDS = tuple(field.attname for field in _COLUMNS)

# client id -> last_used_at as this process last recorded or read it
_last_used: dict[int, object] = {}
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
    found = refdata.cached(API_CLIENTS, [prefix], _read).get(prefix)
    if found is None:
        return None
    values, branch_ids, last_used_at = found
    client = ApiClient.from_db(DEFAULT_DB_ALIAS, _FIELDS, values)
    client.allowed_branch_ids = branch_ids
    recorded = _last_used.get(client.pk)
    client.last_used_at = max((t for t in (last_used_at, recorded) if t is not None), default=None)
    if not key_matches(raw_key, client.key_hash) or not client.is_active:
        return None
    return client


def _read(prefixes: list[str]) -> dict[str, tuple]:
    table = ApiClient._meta.db_table
    through = ApiClient.allowed_branches.through._meta
    columns = ", ".join(f'c."{name}"' for name in _FIELDS)
    sql = (
        f'SELECT {columns}, c."last_used_at", ARRAY(SELECT a."branch_id" '  # noqa: S608 - tables and columns of the models
        f'FROM "{through.db_table}" a WHERE a."apiclient_id" = c."id") '
        f'FROM "{table}" c WHERE c."key_prefix" = ANY(%s)'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefixes])
        rows = cursor.fetchall()
    found = {}
    for row in rows:
        # as the ORM would read them (the scopes' JSON comes from psycopg as text)
        values = tuple(
            field.from_db_value(value, None, connection)
            if hasattr(field, "from_db_value")
            else value
            for field, value in zip(_COLUMNS, row, strict=False)
        )
        prefix = values[_FIELDS.index("key_prefix")]
        found[prefix] = (values, frozenset(row[-1]), row[-2])
    return found


def api_client_remember_use(client: ApiClient) -> None:
    """Keep ``last_used_at`` as :func:`api.services.api_client_touch` set it, so that the
    next requests of the minute in this process do not touch it again (the cached row
    keeps the value it was read with)."""
    with _lock:
        _last_used[client.pk] = client.last_used_at


def api_clients_changed(**kwargs) -> None:
    """A client's allowed branches changed (``m2m_changed``: no ``post_save``)."""
    refdata.changed(API_CLIENTS, using=kwargs.get("using") or DEFAULT_DB_ALIAS)
