"""Loans opened in bulk (a book brought in: ``imports``' set-based path): many loans with
their schedules, balances, dues and co-borrowers written with PostgreSQL's ``COPY`` in the
caller's transaction, their ids reserved from the tables' sequences first, and the audit
events the change tracking would have written one by one (create, every tracked field).

The caller has validated every loan as ``loan_account_create`` and ``loan_co_borrower_add``
would (``LoanAccount.clean``, ``CoBorrower.clean``): this module writes, it does not judge.
A constraint that still fails (a loan number taken meanwhile) raises ``IntegrityError`` and
the caller's transaction writes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.utils import timezone

from audit.services import audit_creates_add
from core.bulk import copy_rows, model_columns, model_values, reserve_ids

from ..dues import dues_of
from ..models import CoBorrower, Customer, Instalment, LoanAccount
from ..schedule import ScheduledInstalment

ZERO = Decimal("0.00")
INSTALMENT_COLUMNS = [
    "loan_id", "number", "due_date", "principal_due", "interest_due",
    "charges_due", "principal_paid", "interest_paid", "charges_paid", "status",
]  # fmt: skip
UNPAID = (ZERO, ZERO, ZERO, ZERO, Instalment.Status.DUE.value)


@dataclass
class NewLoan:
    """A loan to open: ``LoanAccount``'s own fields (``loan_number``, ``customer``,
    ``product``, ``branch``, the terms, ``collection_officer_id``), its schedule (EMI,
    instalments) and its co-borrowers (customer, relationship, role)."""

    fields: dict
    emi_amount: Decimal
    instalments: Sequence[ScheduledInstalment]
    co_borrowers: list[tuple[Customer, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Due:
    """An instalment as ``loans.dues`` reads it: nothing paid yet."""

    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    charges_due: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    charges_paid: Decimal = ZERO


def loan_accounts_bulk_add(
    loans: list[NewLoan], *, actor, as_of: date | None = None
) -> list[LoanAccount]:
    """Open ``loans`` with ``COPY`` (see the module), in the caller's transaction: each with
    its outstanding totals and its dues as of ``as_of`` (today in IST), as
    ``loan_account_create`` leaves a loan. Returns the loans (with their ids), by number."""
    if not loans:
        return []
    as_of = as_of or timezone.localdate()
    # in the order of the unique loan number: two bulk loads sharing loans wait on each
    # other's, they never deadlock
    loans = sorted(loans, key=lambda new: new.fields["loan_number"])
    now = timezone.now()
    accounts, instalment_rows, co_borrowers = [], [], []
    loan_ids = reserve_ids(LoanAccount, len(loans))
    for loan_id, new in zip(loan_ids, loans, strict=True):
        account = LoanAccount(id=loan_id, emi_amount=new.emi_amount, **new.fields)
        dues = [_Due(i.number, i.due_date, i.principal, i.interest) for i in new.instalments]
        account.outstanding_principal = sum((row.principal_due for row in dues), ZERO)
        account.outstanding_interest = sum((row.interest_due for row in dues), ZERO)
        figures = dues_of(dues, as_of)
        for name in ("next_due_date", "next_due_amount", "overdue_principal", "overdue_interest"):
            setattr(account, name, getattr(figures, name))
        account.overdue_charges, account.dpd, account.bucket = ZERO, figures.dpd, figures.bucket
        account.dues_as_of, account.created_at, account.updated_at = as_of, now, now
        accounts.append(account)
        instalment_rows.extend(
            (loan_id, row.number, row.due_date, row.principal_due, row.interest_due, *UNPAID)
            for row in dues
        )
        co_borrowers.extend(
            CoBorrower(loan=account, customer=customer, relationship=relationship, role=role)
            for customer, relationship, role in new.co_borrowers
        )
    for co_borrower, co_id in zip(
        co_borrowers, reserve_ids(CoBorrower, len(co_borrowers)), strict=True
    ):
        co_borrower.id = co_id
    copy_rows(LoanAccount, model_columns(LoanAccount), (model_values(a) for a in accounts))
    copy_rows(Instalment, INSTALMENT_COLUMNS, instalment_rows)
    copy_rows(CoBorrower, model_columns(CoBorrower), (model_values(c) for c in co_borrowers))
    audit_creates_add([*accounts, *co_borrowers], actor=actor)
    return accounts
