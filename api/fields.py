"""Fields for what API requests parse as numbers: money, ids, dates and counts.

Python's ``\\d``, ``int()``, ``Decimal()`` and Django's date parsing accept any Unicode
decimal digit, so Arabic-Indic or full-width "1500" would be read as 1500; the schema promises ASCII
digits (a JSON Schema ``pattern`` is an ECMAScript regex, where ``\\d`` is ``[0-9]``). Every
serializer field and query parameter that parses a number goes through this module:

- :class:`AsciiRegexField`: a ``RegexField`` whose ``\\d``/``\\w`` are ASCII only;
- :class:`TextField`: free text, a JSON string only;
- :class:`AmountField`: rupees as a string, more than zero and at most
  ``PAYMENTS_MAX_AMOUNT``; its documented ``pattern`` is exactly what it accepts;
- :class:`AsciiDateField`: ``YYYY-MM-DD`` in ASCII digits;
- :func:`parse_count`: a page number or page size from the query string.

Text is a JSON string, never a number: DRF's ``CharField`` would take ``900.0`` as
"900.0", which the schema (``type: string``) refuses; :class:`TextField` and
:class:`AsciiRegexField` refuse it as the schema says.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from core.errors import ApplicationError
from core.money import PAISA

ASCII_COUNT = re.compile(r"[0-9]+")
HUGE_COUNT = 10**9  # what a longer number counts as: int() refuses thousands of digits
MAX_INTEGER_DIGITS = 12  # DecimalField(max_digits=14, decimal_places=2)
AMOUNT_SHAPE = re.compile(rf"[0-9]{{1,{MAX_INTEGER_DIGITS}}}(\.[0-9]{{1,2}})?")


def has_non_ascii_digit(value: str) -> bool:
    """True when ``value`` has a digit that is not 0-9 (Arabic-Indic, full-width...)."""
    return any(char.isdigit() and not ("0" <= char <= "9") for char in value)


class _StringOnly:
    """A text field that takes a JSON string and nothing else (no number, no boolean)."""

    default_error_messages = {"not_a_string": "Send this as a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class TextField(_StringOnly, serializers.CharField):
    """A ``CharField`` of a request body: a JSON string only."""


class AsciiRegexField(_StringOnly, serializers.RegexField):
    """A ``RegexField`` whose ``\\d`` and ``\\w`` match ASCII only, as in the schema; a JSON
    string only."""

    def __init__(self, regex: str, **kwargs) -> None:
        super().__init__(re.compile(regex, re.ASCII), **kwargs)


class AsciiDateField(serializers.DateField):
    """An ISO date (``YYYY-MM-DD``) written with ASCII digits."""

    def to_internal_value(self, value):
        if isinstance(value, str) and has_non_ascii_digit(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


def parse_count(request, name: str, *, maximum: int | None = None) -> int | None:
    """The whole number (1 or more) of the query parameter ``name``, None when absent,
    capped at ``maximum``. Anything else (``null``, non-ASCII digits, ``0``, the name
    twice) is a 400 ``invalid`` naming the parameter: never a silent default."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    digits = values[0].lstrip("0")
    if len(values) > 1 or not ASCII_COUNT.fullmatch(values[0]) or not digits:
        raise ApplicationError(
            f"{name} must be given once, as a whole number from 1.",
            code="invalid",
            field=name,
        )
    count = int(digits) if len(digits) <= 9 else HUGE_COUNT
    return min(count, maximum) if maximum else count


def max_amount() -> Decimal:
    return Decimal(settings.PAYMENTS_MAX_AMOUNT).quantize(PAISA)


@lru_cache
def amount_pattern(limit: Decimal) -> str:
    """A regex (Python and ECMAScript alike, no look-around) of exactly the amounts
    :class:`AmountField` accepts: up to 12 digits (leading zeros included) and at most two
    decimals, more than zero and at most ``limit`` (at least 1, less than 10^12)."""
    whole, cents = divmod(int(limit * 100), 100)
    if not 1 <= whole < 10**MAX_INTEGER_DIGITS:
        raise ValueError(f"amount limit out of range: {limit}")
    top = str(whole)
    fraction = r"(\.[0-9]{1,2})?"
    below = []  # whole numbers with fewer digits than the limit, or the same and smaller
    for length in range(1, len(top)):
        below.append(f"[1-9][0-9]{{{length - 1}}}" if length > 1 else "[1-9]")
    for position, digit in enumerate(top):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            rest = len(top) - position - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            below.append(f"{top[:position]}[{lowest}-{int(digit) - 1}]{tail}")
    alternatives = []
    for significant in below:
        digits = _significant_digits(significant)
        zeros = MAX_INTEGER_DIGITS - digits
        alternatives.append(f"0{{0,{zeros}}}{significant}{fraction}")
    zeros = MAX_INTEGER_DIGITS - len(top)
    alternatives.append(f"0{{0,{zeros}}}{top}{_fraction_at_most(cents)}")
    alternatives.append(rf"0{{1,{MAX_INTEGER_DIGITS}}}\.(0[1-9]|[1-9][0-9]?)")
    return "^(" + "|".join(alternatives) + ")$"


def _significant_digits(pattern: str) -> int:
    """How many digits a pattern of :func:`amount_pattern` stands for."""
    counted = re.sub(r"\[[^\]]*\]", "d", pattern)
    counted = re.sub(r"d\{(\d+)\}", lambda m: "d" * int(m.group(1)), counted)
    return len(counted)


def _fraction_at_most(cents: int) -> str:
    """The optional decimals of an amount whose whole part is the limit's."""
    if cents == 0:
        return r"(\.0{1,2})?"
    tens, units = divmod(cents, 10)
    options = [f"[0-{tens}]", f"{tens}[0-{units}]"]
    if tens:
        options.append(f"[0-{tens - 1}][0-9]")
    return r"(\.(" + "|".join(options) + "))?"


class AmountField(serializers.Field):
    """Money as a string with at most two decimals ("1500", "1500.5", "1500.50"), never a
    JSON number: a float cannot carry paise exactly."""

    default_error_messages = {
        "not_a_string": 'Send the amount as a string, e.g. "1500.00".',
        "invalid": "Enter a positive amount with at most two decimals.",
        "not_positive": "The amount must be more than zero.",
        "too_large": "The amount is above the limit of {limit}.",
    }

    def to_internal_value(self, data) -> Decimal:
        if not isinstance(data, str):
            self.fail("not_a_string")
        if not AMOUNT_SHAPE.fullmatch(data):
            self.fail("invalid")
        amount = Decimal(data).quantize(PAISA)
        if amount <= 0:
            self.fail("not_positive")
        limit = max_amount()
        if amount > limit:
            self.fail("too_large", limit=f"{limit:.2f}")
        return amount

    def to_representation(self, value) -> str:
        return f"{value:.2f}"


class AmountFieldSchema(OpenApiSerializerFieldExtension):
    """The documented pattern is the one the field enforces, limit included."""

    target_class = AmountField

    def map_serializer_field(self, auto_schema, direction):
        if direction == "response":
            return {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "example": "1500.00"}
        return {"type": "string", "pattern": amount_pattern(max_amount()), "example": "1500.00"}
