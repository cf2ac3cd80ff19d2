"""Money: INR as ``Decimal`` with two places in Postgres and in the API, integer paise in
DynamoDB. Never a float.

``MoneyField`` is the one definition of a money column (``max_digits=14, decimal_places=2``).
It deconstructs as a plain ``DecimalField``, so migrations see exactly the columns they
always had and adopting it generates none.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

PAISA = Decimal("0.01")
MAX_DIGITS = 14
DECIMAL_PLACES = 2


def to_paise(amount: Decimal) -> int:
    return int((amount * 100).to_integral_exact())


def from_paise(paise: int) -> Decimal:
    return (Decimal(int(paise)) / 100).quantize(PAISA)


class MoneyField(models.DecimalField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs["max_digits"] = MAX_DIGITS
        kwargs["decimal_places"] = DECIMAL_PLACES
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs


def inr(amount: Decimal | int | str | None) -> str:
    """The one money format of every screen: Indian grouping, two places (₹1,23,456.00).
    ``None`` is an em dash; a negative amount keeps its sign before the rupee sign.

    The output is babel's ``format_currency(amount, "INR", locale="en_IN")`` (the tests
    compare the two on many values), written out here because a list page formats
    hundreds of amounts and babel's pattern machinery costs 30-40 us a call, this 4-6 us:
    the last three digits of the rupees, then groups of two. What is not a finite number
    (NaN) goes to babel itself."""
    if amount is None or amount == "":
        return "—"
    value = (amount if isinstance(amount, Decimal) else Decimal(str(amount))).quantize(PAISA)
    if not value.is_finite():
        from babel.numbers import format_currency

        return format_currency(value, "INR", locale="en_IN")
    rupees, paise = f"{value.copy_abs():f}".split(".")
    if len(rupees) > 3:
        head, last = rupees[:-3], rupees[-3:]
        start = len(head) % 2
        pairs = [head[i : i + 2] for i in range(start, len(head), 2)]
        rupees = ",".join([head[:start], *pairs, last] if start else [*pairs, last])
    return f"{'-' if value.is_signed() else ''}₹{rupees}.{paise}"


def in_words(amount: Decimal) -> str:
    """An amount in words, Indian numbering, as a receipt states it:
    ``Rupees One lakh twenty-three thousand four hundred and fifty-six and fifty paise only``."""
    from num2words import num2words

    amount = Decimal(str(amount)).quantize(PAISA)
    rupees = int(amount)
    paise = int((amount - rupees) * 100)
    words = num2words(rupees, lang="en_IN").replace(",", "")
    text = f"Rupees {words[:1].upper()}{words[1:]}"
    if paise:
        text += f" and {num2words(paise, lang='en_IN')} paise"
    return f"{text} only"
