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
