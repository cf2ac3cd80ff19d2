"""Opening balances (the schedule made to match, one migrated posting, charges brought
forward) and payment history (DynamoDB transactions with their original dates and receipt
numbers, seen by the duplicate-receipt check, never posted again)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from imports.models import ImportRowResult
from loans.models import Instalment, LoanAccount, LoanCharge
from payments.ddb_models import QueueItem, TransactionItem, UniqueKeyItem
from payments.exceptions import DuplicateReceipt
from payments.models import Posting
from payments.services import MIGRATED, MIGRATED_MODE, payment_ingest, payment_post_one
from tests.factories import UserFactory, make_loan, pay, payment

from .helpers import results, run_import, statuses

pytestmark = pytest.mark.django_db
S = ImportRowResult.Status
TODAY = timezone.localdate()


@pytest.fixture
def loan():
    # 12 monthly instalments of ₹1,20,000; the first four due by the cut-over date
    return make_loan(
        disbursed_on=TODAY - datetime.timedelta(days=140),
        sanctioned_amount=Decimal("120000.00"),
        disbursed_amount=Decimal("120000.00"),
    )


def _due_by(loan, day):
    return [i for i in loan.instalments.order_by("number") if i.due_date <= day]


def test_an_opening_balance_makes_the_schedule_match_and_posts_once_as_migrated(loan):
    due = _due_by(loan, TODAY)
    last = len(due) - 1
    assert last >= 2
    interest_due = sum(i.interest_due for i in due)
    # the instalments due before the last paid; the last's interest unpaid, ₹1,000 of its
    # principal paid
    paid_principal = sum(i.principal_due for i in due[:last]) + Decimal("1000.00")
    row = {
        "loan_number": loan.loan_number,
        "as_of": TODAY.isoformat(),
        "outstanding_principal": str(Decimal("120000.00") - paid_principal),
        "outstanding_interest": str(due[last].interest_due),
        "outstanding_charges": "590",
    }
    run = run_import("balances", [row])
    assert statuses(run) == [S.CREATED]
    loan.refresh_from_db()
    assert loan.outstanding_principal == Decimal("120000.00") - paid_principal
    posting = Posting.objects.get(loan=loan)
    assert posting.mode == MIGRATED_MODE and posting.business_date == TODAY
    assert posting.principal == paid_principal
    assert posting.interest == interest_due - due[last].interest_due
    instalments = list(loan.instalments.order_by("number"))
    assert [i.status for i in instalments[:last]] == [Instalment.Status.PAID] * last
    unpaid = instalments[last]
    assert unpaid.interest_paid == 0 and unpaid.principal_paid == Decimal("1000.00")
    assert unpaid.charges_due == Decimal("590.00")
    assert all(i.total_paid == 0 for i in instalments[last + 1 :])
    charge = LoanCharge.objects.get(loan=loan)
    assert charge.kind == LoanCharge.Kind.MIGRATED and charge.total == Decimal("590.00")
    overdue = unpaid.interest_due + unpaid.principal_due - Decimal("1000.00")
    assert loan.overdue_principal + loan.overdue_interest == overdue
    assert loan.overdue_charges == Decimal("590.00") and loan.dpd > 0

    assert statuses(run_import("balances", [row])) == [S.UNCHANGED]
    other = run_import("balances", [{**row, "outstanding_principal": "1000"}])
    assert results(other)[2][:2] == (S.REFUSED, "outstanding_principal")
    assert Posting.objects.filter(loan=loan).count() == 1


def test_opening_balances_that_do_not_fit_are_refused_and_write_nothing(loan):
    base = {"loan_number": loan.loan_number, "as_of": TODAY.isoformat()}
    run = run_import(
        "balances",
        [
            {**base, "outstanding_principal": "130000", "outstanding_interest": "0"},
            {**base, "outstanding_principal": "100000", "outstanding_interest": "999999"},
            {
                **base,
                "loan_number": "NOPE",
                "outstanding_principal": "1",
                "outstanding_interest": "0",
            },
            {
                **base,
                "as_of": "2099-01-01",
                "outstanding_principal": "1",
                "outstanding_interest": "0",
            },
        ],
    )
    got = results(run)
    assert got[2][:2] == (S.REFUSED, "outstanding_principal")
    assert got[3][:2] == (S.REFUSED, "outstanding_interest")
    assert got[4][:2] == (S.REFUSED, "loan_number")
    assert got[5][:2] == (S.REFUSED, "as_of")
    assert not Posting.objects.exists()
    assert not Instalment.objects.filter(loan=loan).exclude(status=Instalment.Status.DUE).exists()


def test_a_loan_with_payments_here_takes_no_opening_balance(loan):
    payment_post_one(txn_id=pay(loan, "500.00"))
    run = run_import(
        "balances",
        [
            {
                "loan_number": loan.loan_number,
                "as_of": TODAY.isoformat(),
                "outstanding_principal": "100000",
                "outstanding_interest": "0",
            }
        ],
    )
    assert results(run)[2][:2] == (S.REFUSED, "loan_number")


def test_a_dry_run_of_balances_changes_no_instalment(loan):
    run = run_import(
        "balances",
        [
            {
                "loan_number": loan.loan_number,
                "as_of": TODAY.isoformat(),
                "outstanding_principal": "100000",
                "outstanding_interest": "0",
            }
        ],
        dry_run=True,
    )
    assert statuses(run) == [S.CREATED]
    assert not Posting.objects.exists()
    assert LoanAccount.objects.get(pk=loan.pk).outstanding_principal == Decimal("120000.00")


def _payment_row(loan, receipt, days_ago=30, **overrides):
    return {
        "loan_number": loan.loan_number,
        "receipt_number": receipt,
        "business_date": (TODAY - datetime.timedelta(days=days_ago)).isoformat(),
        "paid_at": "11:20",
        "amount": "7,712.50",
        "mode": "cash",
        "collector": "Asha",
        **overrides,
    }


def test_payment_history_goes_to_dynamodb_with_original_dates_and_is_never_posted(loan):
    run = run_import(
        "payments",
        [
            _payment_row(loan, "R-1"),
            _payment_row(loan, "R-2", days_ago=60, mode="UPI", external_reference="UTR1"),
            _payment_row(loan, "R-1", amount="10"),  # the receipt again, another payment
            _payment_row(loan, "R-3", days_ago=400),
            _payment_row(loan, "R-4", mode="GOLD"),
            _payment_row(loan, "R-5", amount="0"),
        ],
    )
    got = results(run)
    assert got[2][0] == got[3][0] == S.CREATED
    assert got[4][:2] == (S.REFUSED, "receipt_number") and "Receipt R-1 was brought" in got[4][2]
    assert got[5][:2] == (S.REFUSED, "business_date")
    assert got[6][:2] == (S.REFUSED, "mode")
    assert got[7][:2] == (S.REFUSED, "amount")
    txns = sorted(TransactionItem.by_loan.query(loan.loan_number), key=lambda t: t.receipt_number)
    assert [t.receipt_number for t in txns] == ["R-1", "R-2"]
    first = txns[0]
    day = TODAY - datetime.timedelta(days=30)
    assert first.business_date == day.isoformat()
    assert first.branch_day == f"{loan.branch_id}#{day.isoformat()}"
    assert first.amount_paise == 771250 and first.mode == "CASH"
    assert first.status == "POSTED" and first.source == MIGRATED
    assert timezone.localtime(
        datetime.datetime.fromisoformat(first.created_at.replace("Z", "+00:00"))
    ).time() == datetime.time(11, 20)
    assert QueueItem.count() == 0 and not Posting.objects.exists()  # never posted again

    again = run_import(
        "payments", [_payment_row(loan, "R-1"), _payment_row(loan, "R-2", days_ago=60)]
    )
    assert statuses(again) == [S.UNCHANGED, S.UNCHANGED]
    assert TransactionItem.count() == 2 and UniqueKeyItem.count() == 2


def test_the_desk_refuses_a_receipt_number_the_history_brought_in(loan):
    run_import("payments", [_payment_row(loan, "R-9")])
    with pytest.raises(DuplicateReceipt):
        payment_ingest(
            payment=payment(loan, amount="100.00", receipt_number="r-9"),
            idempotency_key="desk-1",
            principal=UserFactory(is_superuser=True),
            source="desk",
        )


def test_a_dry_run_of_payments_writes_nothing_to_dynamodb_but_checks_receipts(loan):
    run_import("payments", [_payment_row(loan, "R-1")])
    run = run_import(
        "payments",
        [
            _payment_row(loan, "R-1"),
            _payment_row(loan, "R-2"),
            _payment_row(loan, "R-1", amount="5"),
        ],
        dry_run=True,
    )
    assert statuses(run) == [S.UNCHANGED, S.CREATED, S.REFUSED]
    assert TransactionItem.count() == 1


def test_a_branch_user_brings_in_only_their_branch_history(loan):
    manager = UserFactory(role="Branch Manager", home_branch=make_loan().branch)
    run = run_import("payments", [_payment_row(loan, "R-1")], actor=manager)
    assert results(run)[2] == (
        S.REFUSED,
        "loan_number",
        "The row belongs to a branch outside yours.",
    )
    assert TransactionItem.count() == 0
