"""Recipient addresses: cleaned before they are stored, masked wherever people see them."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import mobile_digits

from .exceptions import InvalidRecipient
from .models import Channel

_INDIAN_MOBILE = re.compile(r"^[6-9][0-9]{9}$")


def recipient_clean(*, channel: str, recipient: str) -> str:
    """The address to store and send to; ``InvalidRecipient`` when it is not one.

    Mobiles are kept as 10 digits (a +91, 91 or 0 prefix and separators are dropped).
    """
    value = (recipient or "").strip()
    if channel == Channel.EMAIL:
        try:
            validate_email(value)
        except ValidationError:
            raise InvalidRecipient("not a valid email address") from None
        local, domain = value.rsplit("@", 1)
        return f"{local}@{domain.lower()}"
    if channel == Channel.SMS:
        digits = mobile_digits(value)
        if not _INDIAN_MOBILE.match(digits):
            raise InvalidRecipient("not a 10-digit Indian mobile number")
        return digits
    if channel == Channel.PUSH:
        if not value or len(value) > 4096:
            raise InvalidRecipient("not a push device token")
        return value
    raise InvalidRecipient(f"unknown channel {channel!r}")


def recipient_mask(*, channel: str, recipient: str) -> str:
    """``9876543210`` -> ``XXXXXX3210``; ``ramesh@example.com`` -> ``r***@example.com``."""
    if channel == Channel.EMAIL and "@" in recipient:
        local, domain = recipient.rsplit("@", 1)
        return f"{local[:1]}***@{domain}"
    if channel == Channel.SMS:
        return "X" * max(len(recipient) - 4, 0) + recipient[-4:]
    return f"****{recipient[-4:]}" if len(recipient) > 8 else "****"
