from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments.ddb_models import TransactionItem
from payments.models import Posting
from payments.services import payment_ingest, payments_post_due
from tests.factories import UserFactory, make_loan, payment

pytestmark = pytest.mark.django_db


def _run(capsys, *extra):
    today = timezone.localdate()
    start = (today - timedelta(days=7)).isoformat()
    end = (today + timedelta(days=1)).isoformat()  # after the cut-off, tomorrow's business
    with pytest.raises(SystemExit) as exited:
        call_command("payments_integrity", "--from", start, "--to", end, *extra)
        raise SystemExit(0)
    out = capsys.readouterr().out.strip().splitlines()
    return exited.value.code, out


def _posted_loan():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    ids = []
    for i in range(3):
        ids.append(
            payment_ingest(
                payment=payment(loan, amount="700.00"),
                idempotency_key=f"k{i}",
                principal=principal,
                source="t",
            ).body["txn_id"]
        )
    payments_post_due()
    return loan, ids


def test_agreement_prints_only_a_summary_line_and_exits_zero(capsys):
    _posted_loan()
    code, out = _run(capsys)
    assert code == 0
    assert len(out) == 1
    assert out[0].endswith("3 transactions, 3 postings: agree")


def test_a_lost_posting_and_a_changed_amount_are_reported_per_loan(capsys):
    loan, ids = _posted_loan()
    Posting.objects.filter(txn_id=ids[0]).delete()
    Posting.objects.filter(txn_id=ids[1]).update(amount="701.00")
    code, out = _run(capsys)
    assert code == 1
    assert len(out) == 2
    assert out[0].startswith(f"{loan.loan_number}: DynamoDB posted ₹2100.00, ledger ₹1401.00")
    assert f"{ids[0]} POSTED ₹7" in out[0]
    assert f"{ids[1]} amount ₹700.00 in DynamoDB, ₹701.00 in the ledger" in out[0]
    assert out[1].endswith("1 loans differ")


def test_a_posting_without_a_transaction_is_reported(capsys):
    loan, ids = _posted_loan()
    TransactionItem(ids[2]).delete()
    code, out = _run(capsys)
    assert code == 1
    assert f"{ids[2]} posting ₹700.00 has no DynamoDB transaction" in out[0]


def test_bad_dates_are_one_line_errors():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="not a date"):
        call_command("payments_integrity", "--from", "yesterday")
