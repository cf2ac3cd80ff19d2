"""Reconciliation test data, built through the real services: payments through
``payment_ingest`` (and ``payments_post_due``), deposits through ``deposit_record``."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import AreaFactory, BranchFactory, UserFactory, branch_user
from loans.models import BankingPartner, CollectionAccount
from loans.tests.factories import BankingPartnerFactory, make_loan
from payments.services import PaymentInput, payment_ingest
from reconciliation import services

_keys = itertools.count()


def days_ago(n: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=n)


def head_office() -> User:
    return UserFactory(is_superuser=True)


def branch_with_loan(**branch_fields):
    branch = BranchFactory(**branch_fields)
    return branch, make_loan(branch=branch)


def pay(
    loan,
    amount: str = "1000.00",
    *,
    mode: str = "CASH",
    collector: str = "Agent A",
    day: datetime.date | None = None,
    principal=None,
) -> str:
    """Ingest one payment; returns its txn_id."""
    n = next(_keys)
    result = payment_ingest(
        payment=PaymentInput(
            loan_number=loan.loan_number,
            amount=Decimal(amount),
            mode=mode,
            business_date=day or days_ago(1),
            receipt_number=f"RCPT-{n}",
            collector=collector,
        ),
        idempotency_key=f"recon-test-{n}-{timezone.now().timestamp()}",
        principal=principal or head_office(),
        source="test",
    )
    return result.body["txn_id"]


def manager(branch) -> User:
    return branch_user(branch, role="Branch Manager")


def staff(branch) -> User:
    return branch_user(branch, role="Branch Staff")


def area_manager(area=None) -> User:
    return UserFactory(level=User.Level.AREA, home_area=area or AreaFactory(), role="Area Manager")


def finance() -> User:
    return UserFactory(level=User.Level.HEAD_OFFICE, role="Finance")


def collection_account(partner: BankingPartner | None = None, number: str = "123456789012"):
    partner = partner or BankingPartnerFactory()
    account, _ = CollectionAccount.objects.get_or_create(
        partner=partner,
        account_number=number,
        defaults={"account_name": "Collections", "ifsc": "SBOX0000001"},
    )
    return account


def deposit(branch, account, amount="500.00", slip="", day=None, actor=None):
    return services.deposit_record(
        actor=actor or staff(branch),
        branch_id=branch.pk,
        deposit_date=day or days_ago(1),
        collection_account_id=account.pk,
        amount=Decimal(amount),
        slip_number=slip,
    )
