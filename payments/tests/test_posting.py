import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditMessage
from core.clock import iso
from loans.models import Instalment, LoanAccount
from notifications.ddb_models import NotificationItem
from payments import services
from payments.ddb_models import QueueItem, TransactionItem
from payments.exceptions import LedgerSwitchRefused
from payments.models import LedgerSwitch, Posting
from payments.refdata import ledger_state
from payments.services import payment_ingest, payments_post_due
from payments.tests.test_ingest import count_dynamodb_calls
from tests.factories import UserFactory, make_loan, payment, templates_seed

pytestmark = pytest.mark.django_db


def _ingest(loan, amount="1000.00", key=None, principal=None):
    return payment_ingest(
        payment=payment(loan, amount=amount),
        idempotency_key=key or f"k-{time.time_ns()}",
        principal=principal or UserFactory(is_superuser=True),
        source="test",
    ).body["txn_id"]


def test_posting_pays_the_oldest_dues_first_interest_before_principal():
    loan = make_loan(disbursed_amount=Decimal("100000.00"), sanctioned_amount=Decimal("100000.00"))
    first, second = loan.instalments.order_by("number")[:2]
    Instalment.objects.filter(pk=second.pk).update(charges_due=Decimal("590.00"))
    amount = first.total_due + Decimal("600.00")
    txn_id = _ingest(loan, amount=str(amount))
    assert payments_post_due() == {"posted": 1}
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "PAID"
    # the rest went to the second instalment: its charges first, then interest
    assert second.charges_paid == Decimal("590.00")
    assert second.interest_paid == Decimal("10.00")
    assert second.principal_paid == Decimal("0.00")
    assert second.status == "PARTIALLY_PAID"
    posting = Posting.objects.get(txn_id=txn_id)
    assert posting.amount == amount
    assert posting.charges + posting.interest + posting.principal == amount
    loan.refresh_from_db()
    assert loan.outstanding_principal == Decimal("100000.00") - first.principal_due
    txn = TransactionItem.get(txn_id)
    assert txn.status == "POSTED" and txn.posted_at
    assert QueueItem.get(txn_id).queue_status == "POSTING#DONE"


def _receipts(txn_id):
    return [n for n in NotificationItem.scan() if n.entity == f"payments.transaction#{txn_id}"]


def test_posting_queues_a_receipt_for_the_customer():
    loan = make_loan()
    txn_id = _ingest(loan)
    payments_post_due()
    receipts = _receipts(txn_id)
    assert len(receipts) == 1
    assert receipts[0].template_code == "receipt"
    assert "1,000.00" in receipts[0].body
    # stored with the mark, after the ledger committed: ready to send, its id the payment's
    assert (receipts[0].notification_id, receipts[0].status) == (txn_id, "QUEUED")


def test_a_posting_is_seven_statements_and_two_dynamodb_calls(django_assert_num_queries):
    loan = make_loan()
    txn_id = _ingest(loan)
    ledger_state()  # cached for every posting after the first
    # In the ledger's transaction: the loan locked, the posting looked for, the instalments
    # locked, their update, the posting, the loan's update, its audit event's outbox message
    # (7: the loan's values before come from the locked read, not another). Around it: the
    # savepoint that the test's own transaction makes of the atomic block (2). After it:
    # the receipt's template (1).
    with count_dynamodb_calls() as calls, django_assert_num_queries(7 + 2 + 1):
        assert services.payment_post_one(txn_id=txn_id) == "posted"
    # the lease, and the mark that stores the receipt with it
    assert calls == ["UpdateItem", "TransactWriteItems"]
    assert len(_receipts(txn_id)) == 1


def test_a_refused_posting_stores_no_receipt():
    loan = make_loan()
    txn_id = _ingest(loan)
    LoanAccount.objects.filter(pk=loan.pk).update(status="CLOSED")
    assert payments_post_due() == {"failed": 1}
    assert _receipts(txn_id) == []


def test_posting_the_same_transaction_twice_changes_nothing():
    loan = make_loan()
    txn_id = _ingest(loan)
    txn = TransactionItem.get(txn_id)
    posting, created = services.ledger_post(txn=txn)
    again, created_again = services.ledger_post(txn=txn)
    assert created and not created_again and again.pk == posting.pk
    assert Posting.objects.count() == 1
    loan.refresh_from_db()
    assert loan.outstanding_principal + loan.outstanding_interest == (
        sum(i.total_due for i in loan.instalments.all()) - Decimal("1000.00")
    )


def test_a_worker_dying_after_the_ledger_commit_is_finished_by_the_next_one():
    loan = make_loan()
    txn_id = _ingest(loan)
    services.queue_claim_due(limit=10, worker="dead-worker")
    services.ledger_post(txn=TransactionItem.get(txn_id))  # committed, then the worker died
    QueueItem(txn_id).update(
        actions=[QueueItem.next_attempt_at.set(iso(timezone.now() - timedelta(seconds=1)))]
    )
    assert payments_post_due() == {"noop": 1}
    assert Posting.objects.count() == 1
    assert TransactionItem.get(txn_id).status == "POSTED"
    # the dead worker stored no receipt; the run that finished its posting did, once
    assert len(_receipts(txn_id)) == 1
    assert payments_post_due() == {}
    services.queue_item_process(item=QueueItem.get(txn_id))  # a late redelivery
    assert len(_receipts(txn_id)) == 1


def test_a_payment_on_a_loan_closed_meanwhile_ends_failed_with_its_reason():
    loan = make_loan()
    txn_id = _ingest(loan)
    LoanAccount.objects.filter(pk=loan.pk).update(status="CLOSED")
    assert payments_post_due() == {"failed": 1}
    txn = TransactionItem.get(txn_id)
    assert txn.status == "FAILED"
    assert "closed" in txn.failure_reason
    assert not Posting.objects.exists()


def test_a_payment_on_a_loan_without_a_schedule_is_kept_as_excess_and_does_not_close_it():
    loan = make_loan()
    loan.instalments.all().delete()  # as the bulk-loaded benchmark loans are
    owed = loan.outstanding_principal
    txn_id = _ingest(loan, amount="2500.00")
    assert payments_post_due() == {"posted": 1}
    loan.refresh_from_db()
    assert loan.status == "ACTIVE"
    assert loan.outstanding_principal == owed > 0
    assert Posting.objects.get(txn_id=txn_id).excess == Decimal("2500.00")


def test_maintenance_backs_off_then_drains_and_dead_letters_can_be_retried(settings):
    settings.PAYMENTS_POSTING_BACKOFF_SECONDS = 0
    settings.PAYMENTS_POSTING_MAX_ATTEMPTS = 2
    LedgerSwitch.objects.create(pk=1, maintenance=True, reason="month-end")
    loan = make_loan()
    txn_id = _ingest(loan)
    assert payments_post_due() == {"retry": 1}
    item = QueueItem.get(txn_id)
    assert item.queue_status == "POSTING#READY"
    assert "maintenance" in item.last_error
    assert payments_post_due() == {"dead": 1}
    assert QueueItem.get(txn_id).queue_status == "POSTING#DEAD"
    assert payments_post_due() == {}  # dead letters wait for staff
    LedgerSwitch.objects.filter(pk=1).update(maintenance=False)
    services.queue_item_retry(item_id=txn_id, actor=UserFactory(is_superuser=True))
    assert payments_post_due() == {"posted": 1}
    assert Posting.objects.filter(txn_id=txn_id).exists()


def test_backoff_waits_before_the_next_attempt(settings):
    settings.PAYMENTS_POSTING_BACKOFF_SECONDS = 60
    LedgerSwitch.objects.create(pk=1, maintenance=True)
    txn_id = _ingest(make_loan())
    payments_post_due()
    LedgerSwitch.objects.filter(pk=1).update(maintenance=False)
    assert payments_post_due() == {}  # not due yet
    assert QueueItem.get(txn_id).next_attempt_at > iso(timezone.now() + timedelta(seconds=50))


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_post_each_payment_exactly_once():
    loans = [make_loan() for _ in range(3)]
    principal = UserFactory(is_superuser=True)
    txn_ids = [_ingest(loans[i % 3], amount="500.00", principal=principal) for i in range(24)]
    barrier = threading.Barrier(4)

    def work():
        barrier.wait()
        try:
            for _ in range(5):
                payments_post_due(limit=5)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    payments_post_due()
    assert Posting.objects.count() == 24
    assert {TransactionItem.get(t).status for t in txn_ids} == {"POSTED"}
    for loan in loans:
        loan.refresh_from_db()
        paid = sum(i.total_paid for i in loan.instalments.all())
        assert paid == Decimal("4000.00")


@pytest.mark.django_db(transaction=True)
def test_the_sweep_task_runs_through_an_embedded_worker():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from payments.tasks import payments_post_due_task

    txn_id = _ingest(make_loan())
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        payments_post_due_task.delay()
        deadline = time.monotonic() + 60
        while not Posting.objects.filter(txn_id=txn_id).exists():
            assert time.monotonic() < deadline, "the task did not post"
            time.sleep(0.2)
    assert TransactionItem.get(txn_id).status == "POSTED"


def test_a_finished_queue_item_expires_after_the_retention_and_a_dead_letter_never(settings):
    settings.PAYMENTS_QUEUE_RETENTION_DAYS = 12
    settings.PAYMENTS_POSTING_MAX_ATTEMPTS = 1
    LedgerSwitch.objects.create(pk=1, maintenance=True, reason="month-end")
    loan = make_loan()
    dead = _ingest(loan, amount="6.00")
    assert QueueItem.get(dead, consistent_read=True).expires_at is None  # waiting
    assert payments_post_due() == {"dead": 1}
    assert QueueItem.get(dead, consistent_read=True).expires_at is None  # staff decide
    LedgerSwitch.objects.filter(pk=1).update(maintenance=False)
    posted = _ingest(loan)
    before = timezone.now()
    assert payments_post_due() == {"posted": 1}
    item = QueueItem.get(posted, consistent_read=True)
    assert item.queue_status == "POSTING#DONE"
    expected = before + timedelta(days=12)
    assert expected - timedelta(seconds=1) <= item.expires_at <= expected + timedelta(seconds=30)
    # a payment that can never post finishes too (FAILED, its item DONE): it expires as well
    failed = _ingest(loan, amount="5.00")
    LoanAccount.objects.filter(pk=loan.pk).update(status="CLOSED")
    assert payments_post_due() == {"failed": 1}
    assert QueueItem.get(failed, consistent_read=True).expires_at is not None


def test_an_expired_item_not_yet_deleted_is_never_claimed_nor_listed():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    txn_id = _ingest(loan, principal=principal)
    # DynamoDB deletes expired items up to days late: until then they are still there
    QueueItem(txn_id).update(
        actions=[QueueItem.expires_at.set(timezone.now() - timedelta(hours=1))]
    )
    assert services.payment_post_one(txn_id=txn_id) == "not_due"
    assert payments_post_due() == {}
    from payments import selectors

    assert selectors.queue_items(status="READY", user=principal).rows == []
    assert selectors.queue_item_for_user(item_id=txn_id, user=principal) is None
    assert not Posting.objects.exists()
    assert TransactionItem.get(txn_id).status == "RECEIVED"


def test_the_ledger_switch_is_set_through_its_service_with_a_reason_and_audited():
    operations = UserFactory(role="Operations")
    with pytest.raises(LedgerSwitchRefused) as refused:
        services.ledger_switch_set(maintenance=True, reason="  ", actor=operations)
    assert refused.value.field == "reason"
    assert not LedgerSwitch.objects.exists()

    switch = services.ledger_switch_set(maintenance=True, reason=" Core upgrade ", actor=operations)
    assert (switch.maintenance, switch.reason) == (True, "Core upgrade")
    created = AuditMessage.objects.filter(ref="payments.ledgerswitch#1", payload__action="create")
    assert created.exists()
    with pytest.raises(LedgerSwitchRefused, match="switch maintenance on or off"):
        services.ledger_switch_set(maintenance=False, reason="Core upgrade", actor=operations)
    assert LedgerSwitch.objects.get().maintenance is True
    services.ledger_switch_set(maintenance=False, reason="Upgrade done", actor=operations)
    (changes,) = AuditMessage.objects.filter(
        ref="payments.ledgerswitch#1", payload__action="update"
    ).values_list("payload__changes", flat=True)
    assert changes["maintenance"] == [True, False]


# --- Batches: several payments in one ledger transaction and one mark ---------------------


def _ledger_of(loan) -> list[tuple]:
    return list(
        loan.instalments.order_by("number").values_list(
            "charges_paid", "interest_paid", "principal_paid", "status"
        )
    )


def test_a_batch_posts_several_payments_of_a_loan_as_one_by_one_would(
    django_assert_num_queries,
):
    amounts = ["9000.00", "700.00", "12000.00"]
    one_by_one, batched = make_loan(), make_loan()
    single_ids = [_ingest(one_by_one, amount=a) for a in amounts]
    for txn_id in single_ids:
        assert services.payment_post_one(txn_id=txn_id) == "posted"
    batch_ids = [_ingest(batched, amount=a) for a in amounts]
    other = make_loan()
    batch_ids.append(_ingest(other, amount="500.00"))
    ledger_state()
    events_before = list(AuditMessage.objects.values_list("pk", flat=True))
    principal_before = LoanAccount.objects.get(pk=batched.pk).outstanding_principal
    # the ledger's transaction: the loans locked, the postings looked for, the instalments
    # locked, their update, the postings' insert, the loans' audit events, and an update a
    # loan = 6 + 2; the test's savepoint (2); each receipt's template (4)
    with count_dynamodb_calls() as calls, django_assert_num_queries(6 + 2 + 2 + 4):
        assert services.payments_post_these(txn_ids=batch_ids) == {"posted": 4}
    # a lease each, and one mark for them all (with their receipts)
    assert calls == ["UpdateItem"] * 4 + ["TransactWriteItems"]
    assert _ledger_of(batched) == _ledger_of(one_by_one)
    singles = Posting.objects.filter(txn_id__in=single_ids).order_by("amount")
    batch = Posting.objects.filter(txn_id__in=batch_ids[:3]).order_by("amount")
    assert [(p.amount, p.charges, p.interest, p.principal, p.excess) for p in batch] == [
        (p.amount, p.charges, p.interest, p.principal, p.excess) for p in singles
    ]
    one_by_one.refresh_from_db()
    batched.refresh_from_db()
    assert batched.outstanding_principal == one_by_one.outstanding_principal
    assert batched.outstanding_interest == one_by_one.outstanding_interest
    assert {TransactionItem.get(t).status for t in batch_ids} == {"POSTED"}
    assert {QueueItem.get(t).queue_status for t in batch_ids} == {"POSTING#DONE"}
    assert all(len(_receipts(t)) == 1 for t in batch_ids)
    # the loan's balances moved once in the batch: one audit event for it, from before to after
    (changes,) = (
        AuditMessage.objects.filter(ref=f"loans.loanaccount#{batched.pk}", payload__action="update")
        .exclude(pk__in=events_before)
        .values_list("payload__changes", flat=True)
    )
    assert Decimal(changes["outstanding_principal"][0]) == principal_before
    assert Decimal(changes["outstanding_principal"][1]) == batched.outstanding_principal


def test_a_payment_after_the_one_that_closes_its_loan_in_the_same_batch_is_refused():
    loan = make_loan(disbursed_amount=Decimal("1200.00"), sanctioned_amount=Decimal("1200.00"))
    owed = sum(i.total_due for i in loan.instalments.all())
    closing = _ingest(loan, amount=str(owed))
    late = _ingest(loan, amount="10.00")
    assert services.payments_post_these(txn_ids=[closing, late]) == {"posted": 1, "failed": 1}
    loan.refresh_from_db()
    assert loan.status == "CLOSED" and loan.total_outstanding == 0
    assert TransactionItem.get(closing).status == "POSTED"
    refused = TransactionItem.get(late)
    assert refused.status == "FAILED" and "closed" in refused.failure_reason
    assert list(Posting.objects.values_list("txn_id", flat=True)) == [closing]
    assert _receipts(late) == []


def test_a_batch_with_a_payment_marked_already_finishes_it_and_marks_the_others():
    loan = make_loan()
    first, second, third = (_ingest(loan, amount="100.00") for _ in range(3))
    assert services.payment_post_one(txn_id=first) == "posted"
    # its item back to READY, as if a redelivery met it: the batch's one mark is refused by
    # its condition, and each payment is marked on its own
    QueueItem(first).update(
        actions=[
            QueueItem.queue_status.set("POSTING#READY"),
            QueueItem.next_attempt_at.set(iso(timezone.now() - timedelta(seconds=1))),
        ]
    )
    outcomes = services.payments_post_these(txn_ids=[first, second, third])
    assert outcomes == {"noop": 1, "posted": 2}
    assert Posting.objects.count() == 3
    assert {TransactionItem.get(t).status for t in (first, second, third)} == {"POSTED"}
    assert {QueueItem.get(t).queue_status for t in (first, second, third)} == {"POSTING#DONE"}
    assert [len(_receipts(t)) for t in (first, second, third)] == [1, 1, 1]


def test_a_batch_leases_only_the_due_items_and_posts_each_once():
    loan = make_loan()
    txn_ids = [_ingest(loan, amount="100.00") for _ in range(3)]
    assert services.payment_post_one(txn_id=txn_ids[0]) == "posted"
    # posted already, and named twice: neither is posted again
    outcomes = services.payments_post_these(txn_ids=[*txn_ids, txn_ids[1]])
    assert outcomes == {"posted": 2, "not_due": 1}
    assert Posting.objects.count() == 3


def test_maintenance_backs_off_every_payment_of_a_batch(settings):
    settings.PAYMENTS_POSTING_BACKOFF_SECONDS = 60
    LedgerSwitch.objects.create(pk=1, maintenance=True, reason="month-end")
    loan = make_loan()
    txn_ids = [_ingest(loan, amount="100.00") for _ in range(2)]
    assert services.payments_post_these(txn_ids=txn_ids) == {"retry": 2}
    for txn_id in txn_ids:
        item = QueueItem.get(txn_id)
        assert item.queue_status == "POSTING#READY" and "maintenance" in item.last_error
    assert not Posting.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_meeting_in_the_ledger_with_one_batch_post_each_payment_once():
    """Two workers that both hold the same payments (a lease ran out while the first was
    still posting) post them at once, in opposite orders, over the same loans: the loans
    are locked in id order (no deadlock) and each payment is posted exactly once."""
    templates_seed()  # the receipt's: an earlier transactional test's flush removed it
    loans = [make_loan() for _ in range(3)]
    principal = UserFactory(is_superuser=True)
    txn_ids = [_ingest(loans[i % 3], amount="250.00", principal=principal) for i in range(12)]
    txns = [TransactionItem.get(t) for t in txn_ids]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def work(order):
        barrier.wait()
        try:
            results.append(services.ledger_post_many(txns=order))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(txns,)),
        threading.Thread(target=work, args=(txns[::-1],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    created = [t for result in results for t, (_, new) in result.items() if new]
    assert sorted(created) == sorted(txn_ids)  # each by exactly one of the two
    assert Posting.objects.count() == 12
    for loan in loans:
        assert sum(i.total_paid for i in loan.instalments.all()) == Decimal("1000.00")


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_and_sweeps_post_each_payment_exactly_once():
    templates_seed()  # the receipt's: an earlier transactional test's flush removed it
    loans = [make_loan() for _ in range(4)]
    principal = UserFactory(is_superuser=True)
    txn_ids = [_ingest(loans[i % 4], amount="125.00", principal=principal) for i in range(40)]
    barrier = threading.Barrier(4)
    outcomes, errors = [], []

    def work(kind, index):
        barrier.wait()
        try:
            if kind == "these":  # overlapping batches, as two web processes could publish
                for start in range(0, 40, 8):
                    ids = txn_ids[start : start + 8 + 4 * index]
                    outcomes.append(services.payments_post_these(txn_ids=ids))
            else:
                for _ in range(4):
                    outcomes.append(payments_post_due(limit=6))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(kind, index))
        for index, kind in enumerate(["these", "these", "due", "due"])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    payments_post_due()
    assert errors == []
    assert sum(o.get("posted", 0) for o in outcomes) <= 40
    assert Posting.objects.count() == 40
    assert {TransactionItem.get(t).status for t in txn_ids} == {"POSTED"}
    assert all(len(_receipts(t)) == 1 for t in txn_ids)
    for loan in loans:
        assert sum(i.total_paid for i in loan.instalments.all()) == Decimal("1250.00")


def test_a_payment_posted_without_a_receipt_and_met_again_is_finished_without_one():
    from notifications.models import NotificationTemplate

    loan = make_loan()
    txn_id = _ingest(loan)
    receipts = NotificationTemplate.objects.filter(code="receipt", channel="SMS")
    receipts.update(is_active=False)  # staff switched the receipt off: posted without one
    assert services.payment_post_one(txn_id=txn_id) == "posted"
    receipts.update(is_active=True)
    # met again (a lease ran out): the mark with a receipt now is refused by the payment's
    # condition only, and the item is finished; no receipt for a payment posted before
    QueueItem(txn_id).update(
        actions=[
            QueueItem.queue_status.set("POSTING#READY"),
            QueueItem.next_attempt_at.set(iso(timezone.now() - timedelta(seconds=1))),
        ]
    )
    assert services.payment_post_one(txn_id=txn_id) == "noop"
    assert QueueItem.get(txn_id).queue_status == "POSTING#DONE"
    assert TransactionItem.get(txn_id).status == "POSTED"
    assert _receipts(txn_id) == []
    assert Posting.objects.count() == 1
