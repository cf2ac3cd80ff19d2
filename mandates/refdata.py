"""NACH return-code policies as cached reference data (refdata.cache): every bounce reads
one. Registered in MandatesConfig.ready()."""

from __future__ import annotations

from dataclasses import dataclass, fields

from refdata import cache as refdata

RETURN_CODES = "return_code"


@dataclass(frozen=True)
class ReturnCodeRef:
    code: str
    description: str
    retryable: bool
    mandate_action: str
    max_presentations: int
    retry_after_days: int


def return_codes() -> dict[str, ReturnCodeRef]:
    """Every NACH return code's policy, by code."""
    return refdata.cached(RETURN_CODES, ["all"], _load_return_codes)["all"]


def return_code(code: str) -> ReturnCodeRef | None:
    return return_codes().get(code)


def _load_return_codes(keys: list[str]) -> dict[str, dict[str, ReturnCodeRef]]:
    names = [f.name for f in fields(ReturnCodeRef)]
    rows = refdata.primary("mandates.ReturnCodePolicy").values(*names)
    return {"all": {row["code"]: ReturnCodeRef(**row) for row in rows}}
