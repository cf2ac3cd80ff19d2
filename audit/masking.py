"""Masking of personal data (PAN, mobile, bank account numbers) and secrets.

Used by the audit trail and by any app that shows PII in lists, logs or the API, so that
everything masks the same way: only the last few characters stay readable.
"""

from __future__ import annotations

from typing import Any

MASK_CHAR = "X"
SECRET = "***"  # noqa: S105 - the placeholder shown instead of a secret


def mask_value(value: Any, keep: int = 4) -> str:
    """Mask all but the last ``keep`` characters: PAN ``ABCDE1234F`` -> ``XXXXXX234F``,
    mobile ``9876543210`` -> ``XXXXXX3210``, an account number shows its last 4 only.

    A short value never shows more than half of itself (``12345`` -> ``XXX45``), so that
    masking a short code does not reveal nearly all of it. ``None`` and ``""`` give ``""``.
    Masking a masked value changes nothing.
    """
    if value is None:
        return ""
    text = str(value)
    visible = max(0, min(keep, len(text) // 2))
    return MASK_CHAR * (len(text) - visible) + (text[-visible:] if visible else "")


def mask_secret(value: Any) -> str | None:
    """A secret (a password hash) is never shown: only whether there is one."""
    return None if value in (None, "") else SECRET
