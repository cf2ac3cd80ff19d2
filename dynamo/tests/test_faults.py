"""Throttling and transaction conflicts (which DynamoDB Local never raises) are retried
with backoff; nothing is lost and nothing is written twice."""

import pytest

from dynamo.tests.faults import inject
from loans.models import LoanAccount
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
    # the refused transaction wrote nothing, not even the key: the retry is a first request
    assert TransactionItem.count() == 0 and DedupItem.count() == 0
    result = _ingest(loan)
    assert result.status == 201 and not result.replayed
    assert _ingest(loan).replayed
    assert TransactionItem.count() == 1


def test_throttled_reads_are_503_not_500():
    """The key is read when validation refuses (a retry of a payment whose loan closed
    since): a throttled read is a 503 the client retries, then the first answer again."""
    loan = make_loan()
    first = _ingest(loan)
    LoanAccount.objects.filter(pk=loan.pk).update(status="CLOSED")
    with inject("GetItem", "throttling", times=100), pytest.raises(StoreUnavailable):
        _ingest(loan)
    assert _ingest(loan).body == first.body
