import threading
from decimal import Decimal

import pytest
from django.db import connection

from loans.models import LoanAccount
from payments.ddb_models import DedupItem, QueueItem, TransactionItem, UniqueKeyItem
from payments.exceptions import (
    IdempotencyKeyReused,
    LoanNotFound,
    PaymentRejected,
    RequestInFlight,
)
from payments.services import payment_ingest
from tests.factories import BranchFactory, UserFactory, make_loan, payment

pytestmark = pytest.mark.django_db


def _ingest(loan, key="key-1", principal=None, **kw):
    return payment_ingest(
        payment=payment(loan, **kw),
        idempotency_key=key,
        principal=principal or UserFactory(is_superuser=True),
        source="test",
    )


def test_a_payment_is_stored_with_its_dedup_key_and_queue_item_in_paise():
    loan = make_loan()
    result = _ingest(loan, amount="1234.50")
    assert result.status == 201 and not result.replayed
    txn = TransactionItem.get(result.body["txn_id"])
    assert txn.amount_paise == 123450 and isinstance(txn.amount_paise, int)
    assert txn.status == "RECEIVED"
    assert txn.branch_day == f"{loan.branch_id}#{txn.business_date}"
    assert result.body["amount"] == "1234.50"
    assert QueueItem.get(txn.txn_id).queue_status == "POSTING#READY"
    assert DedupItem.count() == 1


def test_same_key_same_body_replays_the_first_response():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    first = _ingest(loan, principal=principal)
    second = _ingest(loan, principal=principal)
    assert second.replayed and second.status == 201
    assert second.body == first.body
    assert TransactionItem.count() == 1


def test_same_key_different_body_is_a_conflict():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    _ingest(loan, principal=principal, amount="100.00")
    with pytest.raises(IdempotencyKeyReused):
        _ingest(loan, principal=principal, amount="200.00")
    assert TransactionItem.count() == 1


def test_a_key_in_flight_gets_a_conflict():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    # A first request has claimed the key and not finished yet.
    from payments.services import ingest

    token = ingest._claim(ingest._hash("test\nkey-1"), ingest._hash(payment(loan).canonical()))
    assert isinstance(token, str)
    with pytest.raises(RequestInFlight):
        _ingest(loan, principal=principal)
    assert TransactionItem.count() == 0


def test_refused_payments_write_nothing_and_free_the_key():
    loan = make_loan()
    LoanAccount.objects.filter(pk=loan.pk).update(status="CLOSED")
    with pytest.raises(PaymentRejected) as caught:
        _ingest(loan)
    assert caught.value.code == "loan_not_active"
    assert TransactionItem.count() == 0 and QueueItem.count() == 0 and DedupItem.count() == 0


def test_another_branchs_loan_is_not_found_for_branch_staff():
    loan = make_loan()
    outsider = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    with pytest.raises(LoanNotFound):
        _ingest(loan, principal=outsider)
    assert TransactionItem.count() == 0


def test_a_future_business_date_is_refused():
    import datetime

    loan = make_loan()
    with pytest.raises(PaymentRejected) as caught:
        _ingest(loan, business_date=datetime.date.today() + datetime.timedelta(days=5))
    assert caught.value.field == "business_date"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_store_one_transaction():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    results, errors = [], []
    barrier = threading.Barrier(8)

    def send():
        barrier.wait()
        try:
            results.append(_ingest(loan, key="same-key", principal=principal))
        except RequestInFlight as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert TransactionItem.count() == 1
    assert len(results) + len(errors) == 8
    assert len({r.body["txn_id"] for r in results}) == 1
    assert sum(not r.replayed for r in results) <= 1
    assert Decimal(results[0].body["amount"]) == Decimal("1000.00") if results else True


def test_a_request_whose_key_was_taken_over_meanwhile_stores_nothing_and_is_in_flight(
    monkeypatch,
):
    """The first request stalled past its claim's lease and a retry took the key over
    (a new claim token): the first one's write is refused on the key (409 in flight, not
    a 500), and neither its transaction nor its receipt number is stored."""
    from payments.services import ingest

    loan = make_loan()
    validate = ingest._validate

    def stall_then_lose_the_key(payment, principal):
        result = validate(payment, principal)
        DedupItem(ingest._hash("test\nkey-1")).update(
            actions=[DedupItem.claim_token.set("the-retry's-claim")]
        )
        return result

    monkeypatch.setattr(ingest, "_validate", stall_then_lose_the_key)
    with pytest.raises(RequestInFlight):
        _ingest(loan, receipt_number="RC-1")
    assert TransactionItem.count() == 0 and QueueItem.count() == 0
    assert UniqueKeyItem.count() == 0
