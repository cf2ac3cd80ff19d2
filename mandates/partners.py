"""Banking partners behind one adapter interface (the sandbox partner is in sandbox.py).

A real partner takes mandate registrations and debit batches (API or SFTP files) and
answers later: registration with a UMRN, each debit with success or a NACH return code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class RegistrationOutcome:
    accepted: bool
    umrn: str = ""
    reason: str = ""


@dataclass(frozen=True)
class DebitRequest:
    execution_id: str
    umrn: str
    account_number: str
    ifsc: str
    amount_paise: int
    due_date: str


class PartnerAdapter(Protocol):
    code: str

    def register_mandate(self, mandate) -> RegistrationOutcome: ...

    def present(self, *, batch_reference: str, debits: list[DebitRequest]) -> None:
        """Hand over a batch. Must be idempotent by execution id: a batch presented
        again after a crash must not debit anyone twice."""


def adapter_for(partner_code: str) -> PartnerAdapter:
    """The adapter class for a partner code (settings), the sandbox by default."""
    path = settings.MANDATES_PARTNER_ADAPTERS.get(
        partner_code, settings.MANDATES_PARTNER_ADAPTERS.get("default")
    )
    return import_string(path)(partner_code)
