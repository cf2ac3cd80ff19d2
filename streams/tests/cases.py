"""The day of payments the stream tests apply, and the DCR figures they compare."""

from django.utils import timezone

from approvals.services import approval_decide
from core.outbox import outbox_relay
from loans.models import LoanAccount
from payments.ddb_models import TransactionItem
from payments.models import REVERSAL_TOPIC
from payments.services import business_date_for, payment_reversal_request, payments_post_due
from reconciliation.models import Dcr
from tests.factories import UserFactory, branch_with_loan, make_loan, pay


def open_day(branch):
    return business_date_for(branch, timezone.now())


def snapshot(branch) -> tuple:
    dcr = Dcr.objects.get(branch=branch, business_date=open_day(branch))
    lines = sorted(dcr.lines.values_list("dimension", "key", "count", "amount"))
    return (
        dcr.collected_count, dcr.collected_amount, dcr.cash_amount, dcr.excluded_count,
        dcr.excluded_amount, dcr.txn_ids, dcr.excluded_txn_ids, dcr.is_provisional, lines,
    )  # fmt: skip


def reverse(txn_id: str, branch) -> None:
    manager = UserFactory(role="Branch Manager", home_branch=branch)
    finance = UserFactory(role="Finance", level="HEAD_OFFICE")
    request = payment_reversal_request(txn_id=txn_id, reason="cheque bounced", actor=manager)
    approval_decide(request_id=request.pk, approve=True, actor=finance, remarks="ok")
    outbox_relay(topics=[REVERSAL_TOPIC])
    assert TransactionItem.get(txn_id).status == "REVERSED"


def a_day_of_payments():
    """Cash and UPI by two collectors, posted; one FAILED; one POSTED then REVERSED; one
    still RECEIVED. Returns the branch and the txn ids by what became of them."""
    branch, loan = branch_with_loan()
    day = open_day(branch)
    posted = [
        pay(loan, "1000.00", collector="Agent A", day=day),
        pay(loan, "250.50", mode="UPI", collector="Agent B", day=day),
    ]
    reversed_ = pay(loan, "400.00", collector="Agent B", day=day)
    closed = make_loan(branch=branch)
    failed = pay(closed, "700.00", day=day)
    LoanAccount.objects.filter(pk=closed.pk).update(status="CLOSED")
    payments_post_due()
    reverse(reversed_, branch)
    received = pay(loan, "99.00", mode="CHEQUE", collector="Agent A", day=day)
    return branch, {"posted": posted, "reversed": reversed_, "failed": failed, "received": received}
