"""The one money format and the one date/time format of every screen:
``{% load formats %}`` then ``{{ amount|inr }}`` (₹1,23,456.00), ``{{ moment|ist }}``
(07 Dec 2026, 14:05 IST), ``{{ day|day }}`` (07 Dec 2026) and ``{{ amount|in_words }}``;
and how a person is named: ``{{ user|person }}`` (full name, else username; "system" for
no one). Python code that shows these calls the same functions.
"""

import datetime as dt

from django import template
from django.utils import timezone

from core import money
from core.clock import parse_iso

register = template.Library()

DATE_FORMAT = "%d %b %Y"


@register.filter
def inr(amount) -> str:
    return money.inr(amount)


@register.filter
def in_words(amount) -> str:
    return money.in_words(amount) if amount not in (None, "") else ""


@register.filter
def ist(moment) -> str:
    """A moment in IST (the project's time zone), with the zone named."""
    if not moment:
        return "—"
    if isinstance(moment, str):
        moment = parse_iso(moment)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return f"{timezone.localtime(moment).strftime(DATE_FORMAT + ', %H:%M')} IST"


@register.filter
def day(value) -> str:
    if not value:
        return "—"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.strftime(DATE_FORMAT)


@register.filter
def person(user) -> str:
    """A person as screens name them: their full name, else their username."""
    if user is None or user == "":
        return "system"
    return user.get_full_name() or user.get_username()
