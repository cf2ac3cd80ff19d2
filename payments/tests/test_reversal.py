import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from approvals.exceptions import AlreadyDecided, MakerCannotCheck
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from audit.models import AuditMessage
from core.models import OutboxMessage
from core.outbox import outbox_relay
from core.workflow import NotAllowed
from payments.ddb_models import TransactionItem
from payments.integrity import integrity_check
from payments.models import REVERSAL_TOPIC, Posting
from payments.services import (
    payment_ingest,
    payment_reversal_request,
    payments_post_due,
)
from tests.factories import BranchFactory, UserFactory, make_loan, payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def posted():
    branch = BranchFactory()
    loan = make_loan(branch=branch)
    txn_id = payment_ingest(
        payment=payment(loan, amount="5000.00"),
        idempotency_key="r1",
        principal=UserFactory(is_superuser=True),
        source="t",
    ).body["txn_id"]
    payments_post_due()
    manager = UserFactory(role="Branch Manager", home_branch=branch)
    finance = UserFactory(role="Finance", level=User.Level.HEAD_OFFICE)
    return loan, txn_id, manager, finance


def test_an_approved_reversal_reopens_the_dues_it_paid(posted):
    loan, txn_id, manager, finance = posted
    before = {i.pk: i.total_paid for i in loan.instalments.all()}
    request = payment_reversal_request(txn_id=txn_id, reason="cheque bounced", actor=manager)
    assert Posting.objects.get(txn_id=txn_id).reversed_at is None  # nothing before approval
    approval_decide(request_id=request.pk, approve=True, actor=finance, remarks="ok")
    posting = Posting.objects.get(txn_id=txn_id)
    assert posting.reversed_at and posting.reversed_by == finance
    assert all(i.total_paid == 0 for i in loan.instalments.all())
    assert sum(before.values()) == Decimal("5000.00")
    loan.refresh_from_db()
    assert loan.total_outstanding == sum(i.total_due for i in loan.instalments.all())
    assert outbox_relay(topics=[REVERSAL_TOPIC])[REVERSAL_TOPIC] == 1
    assert TransactionItem.get(txn_id).status == "REVERSED"
    assert AuditMessage.objects.filter(
        ref=f"payments.posting#{posting.pk}", payload__action="transition"
    ).exists()


def test_the_maker_cannot_approve_their_own_reversal(posted):
    loan, txn_id, manager, _ = posted
    manager.groups.add(*User.objects.get(pk=posted[3].pk).groups.all())  # even with Finance's role
    request = payment_reversal_request(txn_id=txn_id, reason="duplicate", actor=manager)
    with pytest.raises(MakerCannotCheck):
        approval_decide(request_id=request.pk, approve=True, actor=manager)
    assert ApprovalRequest.objects.get(pk=request.pk).status == "PENDING"


def test_only_permitted_roles_ask_and_approve(posted):
    loan, txn_id, manager, finance = posted
    staff = UserFactory(role="Branch Staff", home_branch=loan.branch)
    with pytest.raises(NotAllowed):
        payment_reversal_request(txn_id=txn_id, reason="x", actor=staff)
    request = payment_reversal_request(txn_id=txn_id, reason="x", actor=manager)
    other_manager = UserFactory(role="Branch Manager", home_branch=loan.branch)
    with pytest.raises(NotAllowed):
        approval_decide(request_id=request.pk, approve=True, actor=other_manager)


def test_returning_needs_remarks_and_a_second_request_waits_for_the_first(posted):
    loan, txn_id, manager, finance = posted
    request = payment_reversal_request(txn_id=txn_id, reason="x", actor=manager)
    with pytest.raises(AlreadyDecided):
        payment_reversal_request(txn_id=txn_id, reason="again", actor=manager)
    with pytest.raises(NotAllowed):
        approval_decide(request_id=request.pk, approve=False, actor=finance, remarks="")
    approval_decide(request_id=request.pk, approve=False, actor=finance, remarks="not proven")
    assert Posting.objects.get(txn_id=txn_id).reversed_at is None


@pytest.mark.django_db(transaction=True)
def test_two_checkers_at_once_one_decision_one_audit_event(posted):
    loan, txn_id, manager, finance = posted
    second_finance = UserFactory(role="Finance", level=User.Level.HEAD_OFFICE)
    request = payment_reversal_request(txn_id=txn_id, reason="x", actor=manager)
    outcomes = []
    barrier = threading.Barrier(2)

    def decide(user):
        barrier.wait()
        try:
            approval_decide(request_id=request.pk, approve=True, actor=user, remarks="ok")
            outcomes.append("won")
        except AlreadyDecided as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(u,)) for u in (finance, second_finance)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[0].startswith("Already approved by")
    assert outcomes.count("won") == 1
    assert (
        AuditMessage.objects.filter(
            ref=f"approvals.approvalrequest#{request.pk}", payload__action="transition"
        ).count()
        == 1
    )
    assert Posting.objects.filter(txn_id=txn_id, reversed_at__isnull=False).count() == 1


def test_the_integrity_check_counts_a_reversal_missing_in_dynamodb_once_its_message_is_done(
    posted,
):
    loan, txn_id, manager, finance = posted
    request = payment_reversal_request(txn_id=txn_id, reason="cheque bounced", actor=manager)
    approval_decide(request_id=request.pk, approve=True, actor=finance, remarks="ok")
    today = timezone.localdate()

    def check():
        return integrity_check(start=today - timedelta(days=5), end=today + timedelta(days=1))

    message = OutboxMessage.objects.filter(topic=REVERSAL_TOPIC, key=txn_id)
    assert message.get().done_at is None and TransactionItem.get(txn_id).status == "POSTED"
    assert check().agrees  # on its way to DynamoDB: not a difference
    message.update(done_at=timezone.now())  # done, yet DynamoDB says POSTED
    (difference,) = check().differences
    assert f"{txn_id} reversed in the ledger, POSTED" in difference
    message.update(done_at=None)
    assert outbox_relay(topics=[REVERSAL_TOPIC])[REVERSAL_TOPIC] == 1
    assert TransactionItem.get(txn_id).status == "REVERSED" and check().agrees
