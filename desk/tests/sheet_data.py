"""The collection sheet's test data: loans whose dues fields are set as the dues refresh
would set them (the sheet only reads them)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from desk.sheet_forms import branch_business_date
from loans.models import CoBorrower, LoanAccount
from tests.factories import make_customer, make_loan


def bucket_of(dpd: int) -> str:
    B = LoanAccount.Bucket
    if dpd == 0:
        return B.CURRENT
    if dpd <= 30:
        return B.SMA0
    if dpd <= 60:
        return B.SMA1
    if dpd <= 90:
        return B.SMA2
    return B.NPA


def set_dues(
    loan: LoanAccount,
    *,
    next_due: datetime.date | None,
    next_amount: str = "5000.00",
    dpd: int = 0,
    overdue: tuple[str, str, str] = ("0", "0", "0"),
    last_paid: datetime.date | None = None,
    last_amount: str = "0",
    officer=None,
    status: str = LoanAccount.Status.ACTIVE,
) -> LoanAccount:
    LoanAccount.objects.filter(pk=loan.pk).update(
        next_due_date=next_due,
        next_due_amount=Decimal(next_amount),
        dpd=dpd,
        bucket=bucket_of(dpd),
        overdue_principal=Decimal(overdue[0]),
        overdue_interest=Decimal(overdue[1]),
        overdue_charges=Decimal(overdue[2]),
        dues_as_of=next_due,
        last_payment_date=last_paid,
        last_payment_amount=Decimal(last_amount),
        collection_officer=officer,
        status=status,
    )
    loan.refresh_from_db()
    return loan


def co_borrow(loan: LoanAccount, name: str, role=CoBorrower.Role.CO_BORROWER) -> CoBorrower:
    return CoBorrower.objects.create(
        loan=loan,
        customer=make_customer(branch=loan.branch, name=name),
        relationship=CoBorrower.Relationship.SPOUSE,
        role=role,
    )


@dataclass
class Sheet:
    """At the world's ``own`` branch on its business date ``day``: one loan due that day,
    one overdue (SMA-1, not due again until later), one paid that day, one not due until
    ten days later, one closed though overdue; at ``near``, one due that day. The world's
    own loans are set not due until after the sheet's window."""

    day: datetime.date
    due: LoanAccount
    overdue: LoanAccount
    paid: LoanAccount
    not_due: LoanAccount
    closed: LoanAccount
    near_due: LoanAccount


def build_sheet(world) -> Sheet:
    own, near = world.branches["own"], world.branches["near"]
    day = branch_business_date(own)
    later = day + datetime.timedelta(days=20)

    def loan(branch, name):
        return make_loan(customer=make_customer(branch=branch, name=name))

    # The world's loans (disbursed before the sheet's date) carry their schedules' dues;
    # here they are not due until after the sheet's window, so only this sheet's loans show.
    for where in ("own", "near", "far"):
        set_dues(world.loans[where], next_due=later)

    return Sheet(
        day=day,
        due=set_dues(loan(own, "Asha Kulkarni"), next_due=day, next_amount="5000.00"),
        overdue=set_dues(
            loan(own, "Bhavesh Patil"),
            next_due=later,
            dpd=45,
            overdue=("3000.00", "1500.00", "590.00"),
            last_paid=day - datetime.timedelta(days=50),
            last_amount="4000.00",
        ),
        paid=set_dues(
            loan(own, "Chitra Rao"), next_due=later, last_paid=day, last_amount="5000.00"
        ),
        not_due=set_dues(loan(own, "Dinesh Shah"), next_due=day + datetime.timedelta(days=10)),
        closed=set_dues(
            loan(own, "Esha Menon"),
            next_due=None,
            dpd=12,
            overdue=("100.00", "0", "0"),
            status=LoanAccount.Status.CLOSED,
        ),
        near_due=set_dues(loan(near, "Farhan Ali"), next_due=day),
    )
