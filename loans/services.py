"""Every write to loan master data goes through these services."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum

from accounts.models import User

from .models import Customer, Instalment, LoanAccount
from .schedule import build_schedule

ZERO = Decimal("0.00")


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
    """Recompute the loan's outstanding amounts from its instalments and save them."""
    totals = Instalment.objects.filter(loan=loan).aggregate(
        principal_due=Sum("principal_due"),
        principal_paid=Sum("principal_paid"),
        interest_due=Sum("interest_due"),
        interest_paid=Sum("interest_paid"),
        charges_due=Sum("charges_due"),
        charges_paid=Sum("charges_paid"),
    )
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
