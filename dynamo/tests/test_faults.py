"""Throttling and transaction conflicts (which DynamoDB Local never raises) are retried
with backoff; nothing is lost and nothing is written twice."""

import pytest

from dynamo.tests.faults import inject
from payments.ddb_models import DedupItem, QueueItem, TransactionItem
from payments.exceptions import StoreUnavailable
from payments.services import payment_ingest
from tests.factories import UserFactory, make_loan, payment

pytestmark = pytest.mark.django_db


def _ingest(loan, key="fault-key-1"):
    return payment_ingest(
        payment=payment(loan),
        idempotency_key=key,
        principal=UserFactory(is_superuser=True),
        source="test",
    )


@pytest.mark.parametrize("fault", ["conflict", "throttling"])
def test_transient_faults_of_the_write_are_retried(fault):
    loan = make_loan()
    with inject("TransactWriteItems", fault, times=3) as injection:
        result = _ingest(loan)
    assert injection.raised == 3
    assert result.status == 201
    assert TransactionItem.count() == 1 and QueueItem.count() == 1
    assert DedupItem.get(DedupItem.scan().next().dedup_key).state == "DONE"


def test_a_fault_that_lasts_is_a_503_and_the_retry_completes_once():
    loan = make_loan()
    with inject("TransactWriteItems", "throttling", times=100), pytest.raises(StoreUnavailable):
        _ingest(loan)
    assert TransactionItem.count() == 0
    # the claim waits for its lease to pass; then the same request completes exactly once
    item = next(DedupItem.scan())
    item.update(actions=[DedupItem.lease_until.set(0)])
    result = _ingest(loan)
    assert result.status == 201 and not result.replayed
    assert _ingest(loan).replayed
    assert TransactionItem.count() == 1


def test_throttled_reads_are_503_not_500():
    loan = make_loan()
    with inject("GetItem", "throttling", times=100), pytest.raises(StoreUnavailable):
        _ingest(loan)
