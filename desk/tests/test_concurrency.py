"""Collects at the same moment, in threads with connections of their own: the series row's
lock gives consecutive numbers, and the same form sent twice at once is recorded once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from desk.models import DeskReceipt
from desk.services import CollectInput, desk_collect
from payments.ddb_models import TransactionItem
from tests.concurrency import in_threads
from tests.factories import make_loan

pytestmark = pytest.mark.django_db(transaction=True)


def collecting(loan, staff, amount: str, key: str):
    return lambda: desk_collect(
        collect=CollectInput(loan_number=loan.loan_number, amount=Decimal(amount), mode="CASH"),
        idempotency_key=key,
        duplicate_confirmed=False,
        actor=staff,
    )


def test_two_collects_at_once_at_one_branch_take_consecutive_numbers(world):
    staff, own = world.users["BS"], world.branches["own"]
    other = make_loan(branch=own)
    stamp = timezone.now().timestamp()
    results = in_threads(
        collecting(world.loans["own"], staff, "1000.00", f"a-{stamp}"),
        collecting(other, world.users["BM"], "2000.00", f"b-{stamp}"),
    )
    assert all(isinstance(r, DeskReceipt) for r in results), results
    numbers = sorted(int(r.receipt_number.rsplit("/", 1)[1]) for r in results)
    assert numbers == [1, 2]


def test_the_same_form_sent_twice_at_once_is_recorded_once(world):
    staff, loan = world.users["BS"], world.loans["own"]
    key = f"twice-{timezone.now().timestamp()}"
    results = in_threads(
        collecting(loan, staff, "1500.00", key), collecting(loan, staff, "1500.00", key)
    )
    assert all(isinstance(r, DeskReceipt) for r in results), results
    assert results[0].pk == results[1].pk
    assert DeskReceipt.objects.count() == 1
    assert len(list(TransactionItem.by_loan.query(loan.loan_number))) == 1
