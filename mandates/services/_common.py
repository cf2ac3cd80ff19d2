"""What more than one mandates seam needs: the locked mandate, and stopping it with its
scheduled presentations."""

from __future__ import annotations

from accounts.models import User
from core.errors import NotFound
from core.workflow import transition

from ..models import Mandate, ScheduledPresentation

P = ScheduledPresentation.Status


def _locked(mandate_id: int) -> Mandate:
    try:
        return Mandate.objects.select_for_update().select_related("loan").get(pk=mandate_id)
    except Mandate.DoesNotExist:
        raise NotFound("No such mandate.", code="mandate_not_found") from None


def _mandate_stop(mandate: Mandate, to: str, *, actor: User | None, remarks: str) -> None:
    transition(mandate, to, actor=actor, remarks=remarks)
    ScheduledPresentation.objects.filter(
        mandate=mandate, status__in=[P.SCHEDULED, P.RETRY_SCHEDULED]
    ).update(status=P.STOPPED)
