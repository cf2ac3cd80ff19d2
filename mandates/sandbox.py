"""The sandbox banking partner: it answers the way a real partner does, deterministically.

Registration succeeds with a UMRN derived from the mandate. Debits from an account listed
in ``SandboxBounceRule`` bounce with its code, every other debit succeeds. Its results are
sent through the same service as the partner results API, after a short delay.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import transaction

from .models import SandboxBounceRule, ScheduledPresentation
from .partners import DebitRequest, RegistrationOutcome
from .refdata import return_codes
from .services import execution_result_apply


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


def sandbox_report(*, partner_code: str, execution_ids: list[str]) -> dict[str, int]:
    """The sandbox partner's answers, through the same service as the results API."""
    pairs = []
    for execution_id in execution_ids:
        row = ScheduledPresentation.objects.select_related("mandate").get(
            pk=int(execution_id.split("-")[0])
        )
        pairs.append((execution_id, row.mandate.account_number))
    counts: dict[str, int] = {}
    for result in sandbox_results(pairs):
        outcome = execution_result_apply(partner_code=partner_code, **result)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
