"""Banking partners behind one adapter interface, and the sandbox partner.

A real partner takes mandate registrations and debit batches (API or SFTP files) and
answers later: registration with a UMRN, each debit with success or a NACH return code.
The sandbox answers the same way, deterministically: debits from an account listed in
``SandboxBounceRule`` bounce with its code, every other debit succeeds. Its results are
sent through the same service as the partner results API, after a short delay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from .refdata import return_codes


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


class SandboxPartner:
    def __init__(self, code: str) -> None:
        self.code = code

    def register_mandate(self, mandate) -> RegistrationOutcome:
        digest = hashlib.sha256(f"{self.code}:{mandate.pk}".encode()).hexdigest()
        return RegistrationOutcome(True, umrn=f"SBOX{int(digest[:15], 16) % 10**16:016d}")

    def present(self, *, batch_reference: str, debits: list[DebitRequest]) -> None:
        from .tasks import sandbox_report_task

        execution_ids = [d.execution_id for d in debits]
        delay = settings.MANDATES_SANDBOX_REPORT_DELAY_SECONDS
        transaction.on_commit(
            lambda: sandbox_report_task.apply_async((self.code, execution_ids), countdown=delay)
        )


def sandbox_results(debits: list[tuple[str, str]]) -> list[dict]:
    """The sandbox's verdict for (execution_id, account_number) pairs."""
    from .models import SandboxBounceRule

    rules = dict(
        SandboxBounceRule.objects.filter(
            account_number__in=[account for _, account in debits]
        ).values_list("account_number", "return_code")
    )
    reasons = {code: policy.description for code, policy in return_codes().items()}
    results = []
    for execution_id, account in debits:
        code = rules.get(account)
        if code:
            results.append(
                {
                    "execution_id": execution_id,
                    "status": "BOUNCED",
                    "return_code": code,
                    "reason": reasons.get(code, ""),
                }
            )
        else:
            results.append({"execution_id": execution_id, "status": "SUCCESS"})
    return results


def adapter_for(partner_code: str) -> PartnerAdapter:
    """The adapter class for a partner code (settings), the sandbox by default."""
    path = settings.MANDATES_PARTNER_ADAPTERS.get(
        partner_code, settings.MANDATES_PARTNER_ADAPTERS.get("default")
    )
    return import_string(path)(partner_code)
