"""Branches as cached reference data (refdata.cache): every DCR build reads their cut-off
times. Registered in AccountsConfig.ready()."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from refdata import cache as refdata

BRANCHES = "branch"


@dataclass(frozen=True)
class BranchRef:
    id: int
    code: str
    name: str
    area_id: int
    cutoff_time: datetime.time
    cash_in_hand_limit: Decimal
    is_active: bool

    @property
    def pk(self) -> int:
        return self.id

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


def branches(branch_ids: Iterable[int]) -> dict[int, BranchRef]:
    """The branches of these ids that exist, by id (one round trip for all of them)."""
    found = refdata.cached(
        BRANCHES,
        [str(int(pk)) for pk in branch_ids],
        refdata.rows_by_id("accounts.Branch", BranchRef),
    )
    return {int(key): ref for key, ref in found.items()}


def branch(branch_id: int) -> BranchRef | None:
    return branches([branch_id]).get(int(branch_id))
