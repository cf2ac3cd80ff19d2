"""Login lock-out (django-axes): per user, and per address against password spraying.

Axes counts failures per ``AXES_LOCKOUT_PARAMETERS`` combination and compares the largest
with one limit, ``AXES_FAILURE_LIMIT``. The per-user lock-out (a username from an address)
keeps that limit. One address guessing at many usernames stays under it for every one of
them, so the failures of an address, whatever the usernames, are counted too and compared
with ``LOGIN_ADDRESS_FAILURE_LIMIT``, higher because colleagues behind one office address
share it. The address is not a lockout parameter of axes: a successful login resets the
attempts of every parameter, so a sprayer's one good login would clear the address; here
it clears only that user's own failures.
"""

from __future__ import annotations

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum


class LoginLockoutHandler(AxesDatabaseHandler):
    """``AXES_HANDLER``: axes' database handler with the per-address limit."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        """The failures that count against this login: the user's own, or, when the
        address has reached its own limit, the per-user limit itself (axes compares the
        result with ``AXES_FAILURE_LIMIT`` and locks out at or above it)."""
        failures = super().get_failures(request, credentials)
        if address_failures(request) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            return max(failures, get_failure_limit(request, credentials))
        return failures


def address_failures(request) -> int:
    """Failed logins from the request's address within the cool-off time, any username."""
    attempts = AccessAttempt.objects.filter(ip_address=request.axes_ip_address)
    if settings.AXES_COOLOFF_TIME is not None:
        attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
