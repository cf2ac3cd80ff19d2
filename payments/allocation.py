"""Allocation of a payment to a loan's dues: oldest instalment first, and within each
instalment charges, then interest, then principal. Pure Decimal arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal("0.00")
COMPONENTS = ("charges", "interest", "principal")


@dataclass
class Allocation:
    instalment_id: int
    number: int
    charges: Decimal = ZERO
    interest: Decimal = ZERO
    principal: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.charges + self.interest + self.principal

    def as_json(self) -> dict:
        return {
            "instalment": self.instalment_id,
            "number": self.number,
            **{c: str(getattr(self, c)) for c in COMPONENTS},
        }


def allocate(amount: Decimal, instalments) -> tuple[list[Allocation], Decimal]:
    """Split ``amount`` over ``instalments`` (already in due order); returns the
    allocations and what is left over (an advance)."""
    remaining = amount
    allocations = []
    for inst in instalments:
        if remaining <= ZERO:
            break
        allocation = Allocation(inst.pk, inst.number)
        for component in COMPONENTS:
            owed = getattr(inst, f"{component}_due") - getattr(inst, f"{component}_paid")
            part = min(owed, remaining)
            if part > ZERO:
                setattr(allocation, component, part)
                remaining -= part
        if allocation.total > ZERO:
            allocations.append(allocation)
    return allocations, remaining
