from datetime import date

from accounts.models import User
from accounts.tests.factories import UserFactory, branch_user
from loans.tests.factories import BankingPartnerFactory
from mandates import services


def actors(branch):
    return {
        "staff": branch_user(branch, role="Branch Staff"),
        "manager": branch_user(branch, role="Branch Manager"),
        "ops": UserFactory(role="Operations", level=User.Level.HEAD_OFFICE),
    }


def draft_mandate(loan, staff, *, account_number="123456789012", **overrides):
    fields = {
        "loan": loan,
        "payer": loan.customer,
        "bank_name": "State Bank of India",
        "account_number": account_number,
        "ifsc": "SBIN0001234",
        "max_amount": loan.emi_amount * 2,
        "start_date": date(2026, 1, 1),
        "end_date": date(2030, 12, 31),
        "banking_partner": BankingPartnerFactory(),
    }
    fields.update(overrides)
    return services.mandate_create(actor=staff, **fields)


def active_mandate(loan, people, **overrides):
    mandate = draft_mandate(loan, people["staff"], **overrides)
    services.mandate_submit(mandate_id=mandate.pk, actor=people["staff"])
    services.mandate_approve(mandate_id=mandate.pk, actor=people["manager"])
    return services.mandate_send_to_bank(mandate_id=mandate.pk, actor=people["ops"])
