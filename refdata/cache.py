"""Reference data read on hot paths, cached in Redis (Django's cache). The owning apps
keep their reads in their own ``refdata.py`` and register each namespace with the models
whose changes invalidate it (``register`` in their ``ready()``): the ledger's maintenance
switch (payments: read by every posting), NACH return codes (mandates: every bounce), loan
products (loans: every bounce's charge) and branches with their cut-off time and cash limit
(accounts: every DCR build). Values are frozen dataclasses, never model instances, so a
cached row cannot be saved back.

Only rows whose own query the cache saves are read through here: a branch or product that
already arrives joined to the row a path needs (a payment's loan and its branch) is read
with it, as a Redis round trip would cost more than the join.

Reads: one round trip on a hit (the namespace's version and the entries in one MGET). An
entry written under an older version is a miss; a miss reads the primary database (never
the replica) and caches the result for ``CACHE_SECONDS``.

Changes: ``post_save``/``post_delete`` of the models, and ``changed()`` for code that writes
without signals (``QuerySet.update()``, ``bulk_create()``), give the namespace a new version
when the transaction commits (``transaction.on_commit``), so every process sees a change at
once and a rolled-back change never reaches the cache. Until then, reads of that namespace
in the changing transaction go to Postgres (they see their own change; nothing is cached).
A reader that loaded the old row just before a commit stores it under the old version,
which nobody reads any more.

Redis down: reads fall back to Postgres and one warning is logged; for ``BYPASS_SECONDS``
the process does not try Redis again (each try could cost the socket timeout). A change
committed meanwhile cannot be announced: this process announces it as soon as Redis
answers again, before reading from it; other processes may serve the old value until then,
for ``CACHE_SECONDS`` at most.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

from django.apps import apps
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.signals import post_delete, post_save

logger = logging.getLogger(__name__)

SCHEMA = 1  # part of every key: bump it when a cached dataclass changes shape
CACHE_SECONDS = 300
BYPASS_SECONDS = 15

# model label -> the namespace its changes invalidate (filled by the owning apps' register)
WATCHED: dict[str, str] = {}

T = TypeVar("T")


def register(namespace: str, *labels: str) -> None:
    """An owning app's namespace and the models ("app.Model") whose saves and deletes
    invalidate it; called from the app's ``ready()``."""
    for label in labels:
        WATCHED[label] = namespace
        for signal in (post_save, post_delete):
            signal.connect(_on_change, sender=label, dispatch_uid=f"refdata:{label}")


def rows_by_id(label: str, ref: type[T]) -> Callable[[list[str]], dict[str, T]]:
    """A loader for ``cached``: the rows of these ids as ``ref`` (its fields are the columns)."""
    names = [f.name for f in fields(ref)]

    def load(keys: list[str]) -> dict[str, T]:
        rows = primary(label).filter(pk__in=[int(key) for key in keys]).values(*names)
        return {str(row["id"]): ref(**row) for row in rows}

    return load


def primary(label: str):
    """Reference data decides things: always the primary, even inside ``reporting()``."""
    return apps.get_model(label)._default_manager.using(DEFAULT_DB_ALIAS)


# --- The cache -----------------------------------------------------------------------

_bypass_until = 0.0  # time.monotonic() before which this process does not try Redis
_unannounced: set[str] = set()  # namespaces changed while Redis was unreachable


def _key(namespace: str, key: str) -> str:
    return f"refdata:{SCHEMA}:{namespace}:{key}"


def _new_version() -> str:
    return secrets.token_hex(8)


def cached(namespace: str, keys: list[str], load: Callable[[list[str]], dict[str, Any]]):
    """``{key: value}`` for the keys ``load`` finds, from the cache where it holds them
    under the namespace's current version, else from ``load`` (the database)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    if _changed_in_this_transaction(namespace) or not _redis_usable():
        return load(keys)
    version_key = _key(namespace, "version")
    item_keys = {key: _key(namespace, key) for key in keys}
    try:
        found = cache.get_many([version_key, *item_keys.values()])
        version = found.get(version_key)
        if version is None:
            cache.add(version_key, _new_version(), timeout=None)
            version = cache.get(version_key)
    except Exception as exc:  # any cache failure: the database answers instead
        _redis_failed(exc)
        return load(keys)
    result = {}
    for key, item_key in item_keys.items():
        entry = found.get(item_key)
        if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == version:
            result[key] = entry[1]
    missing = [key for key in keys if key not in result]
    if missing:
        loaded = load(missing)
        result.update(loaded)
        if loaded and version is not None:
            try:
                cache.set_many(
                    {item_keys[key]: (version, value) for key, value in loaded.items()},
                    timeout=CACHE_SECONDS,
                )
            except Exception as exc:
                _redis_failed(exc)
    return result


def _redis_usable() -> bool:
    if time.monotonic() < _bypass_until:
        return False
    if _unannounced:
        return _announce(*sorted(_unannounced))
    return True


def _redis_failed(exc: Exception) -> None:
    global _bypass_until
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    logger.warning(
        "reference data cache unavailable, reading PostgreSQL for %s s: %s: %s",
        BYPASS_SECONDS,
        type(exc).__name__,
        first_line,
    )
    _bypass_until = time.monotonic() + BYPASS_SECONDS


# --- Changes -------------------------------------------------------------------------


def changed(*namespaces: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Reference rows of these namespaces changed in the current transaction: bypass the
    cache for them until it ends, and invalidate them for everyone when it commits."""
    connection = connections[using]
    if connection.in_atomic_block:
        marks = connection.__dict__.setdefault("_refdata_changed", {})
        for namespace in namespaces:
            marks[namespace] = _outermost_block(connection)
    transaction.on_commit(lambda: _announce(*namespaces), using=using)


def _outermost_block(connection):
    return connection.atomic_blocks[0] if connection.atomic_blocks else None


def _changed_in_this_transaction(namespace: str) -> bool:
    connection = connections[DEFAULT_DB_ALIAS]
    marks = connection.__dict__.get("_refdata_changed")
    if not marks or not connection.in_atomic_block or namespace not in marks:
        return False
    return marks[namespace] is _outermost_block(connection)


def _announce(*namespaces: str) -> bool:
    """Give each namespace a new version; True when Redis took them all."""
    try:
        for namespace in namespaces:
            cache.set(_key(namespace, "version"), _new_version(), timeout=None)
            _unannounced.discard(namespace)
    except Exception as exc:
        _unannounced.update(namespaces)
        _redis_failed(exc)
        logger.warning(
            "reference data change (%s) not yet announced: other processes may serve the "
            "old value for up to %s s",
            ", ".join(namespaces),
            CACHE_SECONDS,
        )
        return False
    return True


def _on_change(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    changed(WATCHED[sender._meta.label], using=using)
