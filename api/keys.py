"""API keys: how they look, how they are generated and how they are stored.

A key is ``bo_live_`` followed by 43 random URL-safe characters (32 bytes from
:mod:`secrets`), e.g. ``bo_live_Jx3k9Qa-...``. The brand makes a leaked key easy to
recognise (secret scanners, logs); the 8 characters after it are the key's *prefix*,
stored in clear and indexed to find the client; the whole key is stored only as its
SHA-256 (a key has 256 random bits, so a fast hash is enough). The raw key exists in
memory only: it is shown once to whoever created or rotated it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_BRAND = "bo_live_"
PREFIX_LENGTH = 8
RANDOM_BYTES = 32
_KEY_PATTERN = re.compile(rf"^{re.escape(KEY_BRAND)}[A-Za-z0-9_-]{{40,100}}$")


def generate_key() -> str:
    return KEY_BRAND + secrets.token_urlsafe(RANDOM_BYTES)


def is_well_formed(raw_key: str) -> bool:
    return bool(_KEY_PATTERN.match(raw_key))


def key_prefix(raw_key: str) -> str:
    """The 8 characters after the brand: the key's public, indexed part."""
    return raw_key[len(KEY_BRAND) : len(KEY_BRAND) + PREFIX_LENGTH]


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_matches(raw_key: str, key_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(raw_key), key_hash)
