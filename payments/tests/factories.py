from datetime import date
from decimal import Decimal

from accounts.tests.factories import UserFactory
from payments.services import PaymentInput


def head_office():
    return UserFactory(is_superuser=True)


def payment(loan, amount="1000.00", mode="CASH", business_date: date | None = None, **kw):
    return PaymentInput(
        loan_number=loan.loan_number,
        amount=Decimal(amount),
        mode=mode,
        business_date=business_date,
        # none by default: a receipt number is unique per branch (tests that need one say so)
        receipt_number=kw.pop("receipt_number", ""),
        collector=kw.pop("collector", "Field agent 7"),
        external_reference=kw.pop("external_reference", ""),
    )
