"""Charges (bounce charges, with GST) raised on an instalment by their cause, and waived
only through maker-checker."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F
from django.utils import timezone

from accounts.models import User
from accounts.scoping import scope_queryset
from approvals.services import KindHandler, approval_request_create
from core.money import PAISA, inr

from ..exceptions import ChargeNotWaivable
from ..models import Instalment, LoanAccount, LoanCharge
from .dues_refresh import loan_dues_refresh


def loan_charge_raise(
    *,
    loan: LoanAccount,
    instalment: Instalment,
    kind: str,
    amount: Decimal,
    gst_rate: Decimal,
    reference: str,
    reason: str,
) -> tuple[LoanCharge, bool]:
    """Raise a charge (plus GST) on an instalment, once per ``reference``. Call inside the
    transaction of what caused it; the loan row must be locked by the caller."""
    existing = LoanCharge.objects.filter(reference=reference).first()
    if existing is not None:
        return existing, False
    gst = (amount * gst_rate / 100).quantize(PAISA, ROUND_HALF_UP)
    charge = LoanCharge.objects.create(
        loan=loan,
        instalment=instalment,
        kind=kind,
        amount=amount,
        gst=gst,
        total=amount + gst,
        reference=reference,
        reason=reason,
    )
    Instalment.objects.filter(pk=instalment.pk).update(charges_due=F("charges_due") + charge.total)
    _instalment_status_refresh(instalment.pk)
    loan_dues_refresh(loan=loan)
    return charge, True


def _instalment_status_refresh(instalment_id: int) -> None:
    inst = Instalment.objects.get(pk=instalment_id)
    if inst.derived_status != inst.status:
        Instalment.objects.filter(pk=instalment_id).update(status=inst.derived_status)


def loan_charge_waiver_request(*, charge_id: int, reason: str, actor: User):
    charge = (
        scope_queryset(LoanCharge.objects.select_related("loan"), actor)
        .filter(pk=charge_id)
        .first()
    )
    if charge is None:
        raise ChargeNotWaivable("No such charge that you may see.", code="not_found", status=404)
    if charge.waived_at:
        raise ChargeNotWaivable("This charge is already waived.")
    return approval_request_create(
        kind="CHARGE_WAIVER",
        branch_id=charge.loan.branch_id,
        entity=f"loans.loancharge#{charge.pk}",
        entity_repr=f"{charge.get_kind_display()} {inr(charge.total)} on {charge.loan.loan_number}",
        reason=reason,
        payload={"charge_id": charge.pk},
        actor=actor,
    )


def loan_charge_waive(*, charge_id: int, actor: User) -> LoanCharge:
    """Waive what is still unpaid of a charge (runs inside the approval's transaction)."""
    charge = LoanCharge.objects.select_for_update().get(pk=charge_id)
    if charge.waived_at:
        raise ChargeNotWaivable("This charge is already waived.")
    loan = LoanAccount.objects.select_for_update().get(pk=charge.loan_id)
    inst = Instalment.objects.select_for_update().get(pk=charge.instalment_id)
    unpaid = inst.charges_due - inst.charges_paid
    waived = min(charge.total, unpaid)
    if waived <= 0:
        raise ChargeNotWaivable("This charge has been paid already; nothing to waive.")
    inst.charges_due -= waived
    inst.save(update_fields=["charges_due"])
    _instalment_status_refresh(inst.pk)
    charge.waived_amount = waived
    charge.waived_at = timezone.now()
    charge.save(update_fields=["waived_amount", "waived_at"])
    loan_dues_refresh(loan=loan)
    return charge


def _apply_waiver(*, request, actor) -> None:
    loan_charge_waive(charge_id=request.payload["charge_id"], actor=actor)


# The approval kind of the waiver (registered by LoansConfig.ready(), through
# ``loans.services.APPROVAL_KINDS``).
APPROVAL_KINDS = {
    "CHARGE_WAIVER": KindHandler(
        maker_permission="loans.request_waiver",
        checker_permission="loans.approve_waiver",
        apply=_apply_waiver,
    ),
}
