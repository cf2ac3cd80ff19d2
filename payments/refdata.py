"""The ledger's maintenance switch as cached reference data (refdata.cache): every posting
reads it. Registered in PaymentsConfig.ready()."""

from __future__ import annotations

from dataclasses import dataclass

from refdata import cache as refdata

LEDGER = "ledger"


@dataclass(frozen=True)
class LedgerState:
    maintenance: bool = False
    reason: str = ""


def ledger_state() -> LedgerState:
    """The maintenance switch; no row means open."""
    return refdata.cached(LEDGER, ["switch"], _load_ledger)["switch"]


def _load_ledger(keys: list[str]) -> dict[str, LedgerState]:
    row = (
        refdata.primary("payments.LedgerSwitch")
        .filter(pk=1)
        .values("maintenance", "reason")
        .first()
    )
    return {"switch": LedgerState(**row) if row else LedgerState()}
