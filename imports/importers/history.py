"""The book's money as of the cut-over date: each loan's opening balance (its schedule's
paid and unpaid dues made to match, the paid part posted once as migrated), and up to a
year of payment history written to DynamoDB as it happened (``payments.services``'
migration seam: never queued for posting, seen by statements, DCRs and receipt checks)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.utils import timezone

from loans.models import LoanAccount
from payments.services import (
    MODES,
    HistoricalPayment,
    loan_opening_balance_post,
    payment_history_record,
)

from ..exceptions import RowRefused
from .base import CREATED, UNCHANGED, ChoiceCell, CodeCell, DateCell, Importer, MoneyCell

HISTORY_DAYS = 366  # a year of payments (and a day, for a leap year)
STATUS = {"created": CREATED, "unchanged": UNCHANGED}


class LoanRowImporter(Importer):
    """Rows of one loan each (by ``loan_number``), in the actor's scope."""

    def __init__(self, *, actor) -> None:
        super().__init__(actor=actor)
        self.dry_run = False

    def prepare(self, run, schedule) -> None:
        self.dry_run = run.dry_run

    def loan(self, number: str) -> LoanAccount:
        loan = LoanAccount.objects.filter(loan_number=number).first()
        if loan is None:
            raise RowRefused("loan_number", f"No loan has the number {number}: import it first.")
        self.check_scope(loan.branch_id, "loan_number")
        return loan


class BalanceRow(forms.Form):
    loan_number = CodeCell(max_length=20, help_text="The loan (imported before).")
    as_of = DateCell(help_text="The cut-over date the figures are as of.")
    outstanding_principal = MoneyCell(help_text="Principal not yet repaid (due or not).")
    outstanding_interest = MoneyCell(help_text="Interest due by the cut-over date, unpaid.")
    outstanding_charges = MoneyCell(
        required=False, help_text="Charges owed, GST included (bounce and other); blank: none."
    )


class BalanceImporter(LoanRowImporter):
    kind = "balances"
    title = "Opening balances"
    form_class = BalanceRow
    key_column = "loan_number"
    examples = {
        "loan_number": "LEGL00042",
        "as_of": "2026-11-30",
        "outstanding_principal": "112345.67",
        "outstanding_interest": "1850.00",
        "outstanding_charges": "590.00",
    }

    def write(self, data) -> str:
        loan = self.loan(data["loan_number"])
        if data["as_of"] > timezone.localdate():
            raise RowRefused("as_of", "The cut-over date is in the future.")
        outcome = loan_opening_balance_post(
            loan_id=loan.pk,
            as_of=data["as_of"],
            principal=data["outstanding_principal"],
            interest=data["outstanding_interest"],
            charges=data["outstanding_charges"] or Decimal("0.00"),
        )
        return STATUS[outcome]


class PaymentRow(forms.Form):
    loan_number = CodeCell(max_length=20, help_text="The loan paid (imported before).")
    receipt_number = forms.CharField(max_length=40, help_text="Unique in the loan's branch.")
    business_date = DateCell(help_text="The day it counted for (at most a year back).")
    paid_at = forms.TimeField(
        required=False, help_text="IST time of day it was received (HH:MM); blank: 10:00."
    )
    amount = MoneyCell(min_value=Decimal("0.01"), help_text="Rupees.")
    mode = ChoiceCell(choices=[(m, m) for m in MODES], help_text=", ".join(MODES) + ".")
    collector = forms.CharField(max_length=80, required=False, help_text="Who collected it.")
    external_reference = forms.CharField(
        max_length=80, required=False, help_text="The UTR, UPI, cheque or NACH reference."
    )


class PaymentImporter(LoanRowImporter):
    kind = "payments"
    title = "Payment history"
    form_class = PaymentRow
    key_column = "receipt_number"
    examples = {
        "loan_number": "LEGL00042",
        "receipt_number": "PUN01-R-004512",
        "business_date": "2026-10-05",
        "paid_at": "11:20",
        "amount": "7712.50",
        "mode": "CASH",
        "collector": "Asha Patil",
        "external_reference": "",
    }

    def write(self, data) -> str:
        loan = self.loan(data["loan_number"])
        today = timezone.localdate()
        day = data["business_date"]
        if day > today:
            raise RowRefused("business_date", "The business date is in the future.")
        if day < today - dt.timedelta(days=HISTORY_DAYS):
            raise RowRefused("business_date", "Only the last 12 months of payments come in.")
        at = data["paid_at"] or dt.time(10, 0)
        payment = HistoricalPayment(
            loan=loan,
            receipt_number=data["receipt_number"].strip(),
            business_date=day,
            paid_at=timezone.make_aware(dt.datetime.combine(day, at)),
            amount=data["amount"],
            mode=data["mode"],
            collector=data["collector"],
            external_reference=data["external_reference"],
        )
        # DynamoDB is no part of the row's savepoint: a dry run only checks
        return STATUS[payment_history_record(payment=payment, write=not self.dry_run)]
