"""Time: the one DynamoDB timestamp format and the business date.

DynamoDB keeps moments as text in UTC with microseconds and a ``Z``
(``2026-01-05T09:30:00.123456Z``): fixed width, so string order is time order, which the
sort keys and index ranges (``branch_day`` + ``created_at``, the queue's
``next_attempt_at``, audit ``ts``, notifications' ``scheduled_at``) rely on. Every writer
uses ``iso``. Notifications were once written with ``+00:00`` instead of ``Z``:
``parse_iso`` reads both, and such an old value still sorts correctly against new ones (the
two differ only after the microseconds).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

DYNAMO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(moment: dt.datetime) -> str:
    """A moment as DynamoDB keeps it: UTC, fixed width, sorts as the moments do."""
    return moment.astimezone(dt.UTC).strftime(DYNAMO_FORMAT)


def parse_iso(text: str) -> dt.datetime:
    """A stored moment (``...Z`` or the older ``...+00:00``) as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def business_date(moment: dt.datetime, cutoff: dt.time) -> dt.date:
    """The IST date a payment counts for: at or after the branch's cut-off, the next day."""
    local = timezone.localtime(moment)
    day = local.date()
    return day + dt.timedelta(days=1) if local.time() >= cutoff else day
