"""Every write to loan master data goes through these services."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import F, Sum

from accounts.models import User
from accounts.scoping import scope_queryset
from approvals.services import KindHandler, approval_request_create
from core.errors import ApplicationError
from core.money import PAISA, inr

from .models import Customer, Instalment, LoanAccount, LoanCharge
from .schedule import build_schedule

ZERO = Decimal("0.00")


class ChargeNotWaivable(ApplicationError):
    code = "charge_not_waivable"


NUMBER_SEQUENCES = {
    "customer": ("C", "loans_customer_number_seq"),
    "loan": ("LN", "loans_loan_number_seq"),
}


def next_business_number(kind: str) -> str:
    """Customer and loan numbers from Postgres sequences: unique under concurrency."""
    prefix, sequence = NUMBER_SEQUENCES[kind]
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [sequence])
        (value,) = cursor.fetchone()
    return f"{prefix}{value:010d}"


@transaction.atomic
def customer_create(*, actor: User | None, **fields) -> Customer:
    customer = Customer(**fields)
    customer.customer_number = next_business_number("customer")
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer_id: int, actor: User | None, **changes) -> Customer:
    """Change a customer's details (as validated by the admin's form), under the row's lock.
    The save is audited by the change tracking."""
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    for name, value in changes.items():
        setattr(customer, name, value)
    customer.save()
    return customer


@transaction.atomic
def loan_account_create(
    *,
    customer: Customer,
    product,
    branch,
    sanctioned_amount: Decimal,
    disbursed_amount: Decimal,
    tenure_months: int,
    due_day: int,
    disbursed_on,
    interest_rate: Decimal | None = None,
    actor: User | None,
) -> LoanAccount:
    """Open a loan account and generate its repayment schedule (reducing-balance EMI)."""
    loan = LoanAccount(
        customer=customer,
        product=product,
        branch=branch,
        sanctioned_amount=sanctioned_amount,
        disbursed_amount=disbursed_amount,
        interest_rate=product.interest_rate if interest_rate is None else interest_rate,
        tenure_months=tenure_months,
        due_day=due_day,
        disbursed_on=disbursed_on,
    )
    loan.loan_number = next_business_number("loan")
    loan.full_clean()
    loan.save()
    loan_schedule_generate(loan=loan)
    return loan


@transaction.atomic
def loan_update(*, loan_id: int, actor: User | None, **changes) -> LoanAccount:
    """Change what may change on an open loan (its terms are fixed once disbursed), under
    the row's lock. The save is audited by the change tracking."""
    loan = LoanAccount.objects.select_for_update().get(pk=loan_id)
    for name, value in changes.items():
        setattr(loan, name, value)
    loan.save()
    return loan


def loan_schedule_generate(*, loan: LoanAccount) -> list[Instalment]:
    """(Re)build the schedule of a loan nothing has been paid on, and its outstanding totals."""
    if Instalment.objects.filter(loan=loan).exclude(status=Instalment.Status.DUE).exists():
        raise ValueError(f"{loan}: the schedule has payments and cannot be regenerated")
    Instalment.objects.filter(loan=loan).delete()
    emi_amount, rows = build_schedule(
        principal=loan.disbursed_amount,
        annual_rate_percent=loan.interest_rate,
        tenure_months=loan.tenure_months,
        frequency=loan.product.emi_frequency,
        disbursed_on=loan.disbursed_on,
        due_day=loan.due_day,
    )
    instalments = Instalment.objects.bulk_create(
        Instalment(
            loan=loan,
            number=row.number,
            due_date=row.due_date,
            principal_due=row.principal,
            interest_due=row.interest,
        )
        for row in rows
    )
    loan.emi_amount = emi_amount
    loan_outstanding_refresh(loan=loan)
    return instalments


def loan_outstanding_refresh(*, loan: LoanAccount) -> LoanAccount:
    """Recompute the loan's outstanding amounts from its instalments and save them.

    A loan without a schedule (the benchmark's bulk-loaded loans carry none) keeps the
    figures it has: no instalments is not the same as nothing owed."""
    totals = Instalment.objects.filter(loan=loan).aggregate(
        principal_due=Sum("principal_due"),
        principal_paid=Sum("principal_paid"),
        interest_due=Sum("interest_due"),
        interest_paid=Sum("interest_paid"),
        charges_due=Sum("charges_due"),
        charges_paid=Sum("charges_paid"),
    )
    if totals["principal_due"] is None:
        return loan
    loan.outstanding_principal = (totals["principal_due"] or ZERO) - (
        totals["principal_paid"] or ZERO
    )
    loan.outstanding_interest = (totals["interest_due"] or ZERO) - (totals["interest_paid"] or ZERO)
    loan.outstanding_charges = (totals["charges_due"] or ZERO) - (totals["charges_paid"] or ZERO)
    loan.save(
        update_fields=[
            "emi_amount",
            "outstanding_principal",
            "outstanding_interest",
            "outstanding_charges",
            "updated_at",
        ]
    )
    return loan


# --- Charges --------------------------------------------------------------------------


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
    loan_outstanding_refresh(loan=loan)
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
    from django.utils import timezone

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
    loan_outstanding_refresh(loan=loan)
    return charge


def _apply_waiver(*, request, actor) -> None:
    loan_charge_waive(charge_id=request.payload["charge_id"], actor=actor)


# The approval kinds of this app, registered by LoansConfig.ready().
APPROVAL_KINDS = {
    "CHARGE_WAIVER": KindHandler(
        maker_permission="loans.request_waiver",
        checker_permission="loans.approve_waiver",
        apply=_apply_waiver,
    ),
}
