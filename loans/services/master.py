"""Loan master data: customers and loans opened (their numbers from Postgres sequences),
changed under the row's lock, and a loan's repayment schedule."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction

from accounts.models import User

from ..exceptions import CollectionOfficerRefused, CustomerChangeInvalid
from ..models import (
    CoBorrower,
    Customer,
    CustomerBankAccount,
    Instalment,
    LoanAccount,
    collection_officer_problem,
)
from ..schedule import ScheduledInstalment, build_schedule
from .customer_change import GUARDED_FIELDS
from .dues_refresh import loan_dues_refresh

ASSIGN_COLLECTION_OFFICER = "loans.assign_collection_officer"


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
def customer_create(
    *, actor: User | None, customer_number: str | None = None, **fields
) -> Customer:
    """A new customer, numbered from the sequence unless ``customer_number`` is given (a
    book brought in from another system keeps its numbers: ``imports``)."""
    customer = Customer(**fields)
    customer.customer_number = customer_number or next_business_number("customer")
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_bank_account_add(
    *, customer: Customer, actor: User | None, **fields
) -> CustomerBankAccount:
    """A new customer's first bank account (a change of one goes through maker-checker:
    ``customer_change_request``)."""
    account = CustomerBankAccount(customer=customer, **fields)
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def customer_update(*, customer_id: int, actor: User | None, **changes) -> Customer:
    """Change a customer's details (as validated by the admin's form), under the row's lock.
    The save is audited by the change tracking. The mobile and the PAN change only through
    maker-checker (``customer_change_request``)."""
    guarded = sorted(set(changes) & set(GUARDED_FIELDS))
    if guarded:
        raise CustomerChangeInvalid(
            f"The {', '.join(GUARDED_FIELDS[name] for name in guarded)} changes only through "
            "a change request that a checker approves.",
            field=guarded[0],
            code="maker_checker_required",
        )
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
    loan_number: str | None = None,
    schedule: tuple[Decimal, list[ScheduledInstalment]] | None = None,
    actor: User | None,
) -> LoanAccount:
    """Open a loan account with its repayment schedule: generated (reducing-balance EMI)
    unless ``schedule`` (EMI, instalments) is given; numbered from the sequence unless
    ``loan_number`` is given (an imported book keeps its numbers and schedules)."""
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
    loan.loan_number = loan_number or next_business_number("loan")
    loan.full_clean()
    loan.save()
    if schedule is None:
        loan_schedule_generate(loan=loan)
    else:
        emi_amount, rows = schedule
        loan_schedule_set(loan=loan, emi_amount=emi_amount, rows=rows)
    return loan


@transaction.atomic
def loan_co_borrower_add(
    *, loan: LoanAccount, customer: Customer, relationship: str, role: str, actor: User | None
) -> CoBorrower:
    co_borrower = CoBorrower(loan=loan, customer=customer, relationship=relationship, role=role)
    co_borrower.full_clean()
    co_borrower.save()
    return co_borrower


@transaction.atomic
def loan_update(*, loan_id: int, actor: User | None, **changes) -> LoanAccount:
    """Change what may change on an open loan (its terms are fixed once disbursed), under
    the row's lock. The save is audited by the change tracking."""
    loan = LoanAccount.objects.select_for_update().get(pk=loan_id)
    if "collection_officer" in changes:
        _collection_officer_check(loan, changes["collection_officer"], actor=actor)
    for name, value in changes.items():
        setattr(loan, name, value)
    loan.save()
    return loan


def _collection_officer_check(loan: LoanAccount, officer: User | None, *, actor) -> None:
    """Only who may assign collectors (the branch manager) does, and only a user of the
    loan's branch collects it."""
    if actor is not None and not actor.has_perm(ASSIGN_COLLECTION_OFFICER):
        raise CollectionOfficerRefused(
            "Only the branch manager assigns a loan's collection officer.",
            field="collection_officer",
            status=403,
        )
    if officer is not None and (problem := collection_officer_problem(officer, loan.branch_id)):
        raise CollectionOfficerRefused(problem, field="collection_officer")


def loan_schedule_generate(*, loan: LoanAccount) -> list[Instalment]:
    """(Re)build the schedule of a loan nothing has been paid on, and its outstanding totals."""
    emi_amount, rows = build_schedule(
        principal=loan.disbursed_amount,
        annual_rate_percent=loan.interest_rate,
        tenure_months=loan.tenure_months,
        frequency=loan.product.emi_frequency,
        disbursed_on=loan.disbursed_on,
        due_day=loan.due_day,
    )
    return loan_schedule_set(loan=loan, emi_amount=emi_amount, rows=rows)


def loan_schedule_set(
    *, loan: LoanAccount, emi_amount: Decimal, rows: list[ScheduledInstalment]
) -> list[Instalment]:
    """Give a loan nothing has been paid on this schedule (generated, or another system's
    for an imported loan), and its outstanding totals."""
    if Instalment.objects.filter(loan=loan).exclude(status=Instalment.Status.DUE).exists():
        raise ValueError(f"{loan}: the schedule has payments and cannot be regenerated")
    Instalment.objects.filter(loan=loan).delete()
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
    loan_dues_refresh(loan=loan)
    return instalments
