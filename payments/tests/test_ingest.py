import contextlib
import datetime
import threading
from decimal import Decimal

import pytest
from botocore.client import BaseClient
from botocore.exceptions import EndpointConnectionError
from django.db import connection
from django.utils import timezone

from api.principal import ApiPrincipal
from audit.ddb_models import AuditEventItem
from core.clock import iso
from dynamo.wire import WireClient, _Retry, client_error
from loans.models import LoanAccount
from payments.ddb_models import DedupItem, QueueItem, TransactionItem, UniqueKeyItem
from payments.exceptions import (
    IdempotencyKeyReused,
    LoanNotFound,
    PaymentRejected,
    RequestInFlight,
)
from payments.services import ingest, payment_ingest
from tests.factories import BranchFactory, UserFactory, make_api_client, make_loan, payment

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def count_dynamodb_calls():
    """The DynamoDB operations called meanwhile, through botocore or sent by hand
    (``dynamo.wire``), in order (the calls go through)."""
    calls: list[str] = []
    original = BaseClient._make_api_call
    original_wire = WireClient.call

    def counted(client, operation, params):
        if client.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(client, operation, params)

    def counted_wire(client, operation, body):
        calls.append(operation)
        return original_wire(client, operation, body)

    BaseClient._make_api_call = counted
    WireClient.call = counted_wire
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original
        WireClient.call = original_wire


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


def _legacy_claim(loan, *, lease_seconds: int, key="key-1", **kw) -> DedupItem:
    """A claim the earlier ingestion wrote before its transaction (IN_FLIGHT with a lease):
    still met during a rolling deploy."""
    now = timezone.now()
    claim = DedupItem(
        ingest._dedup_key("test", key),
        request_hash=ingest._hash(payment(loan, **kw).canonical()),
        state="IN_FLIGHT",
        claim_token="an-older-server",
        lease_until=int(now.timestamp()) + lease_seconds,
        created_at=iso(now),
        expires_at=now + datetime.timedelta(days=1),
    )
    claim.save()
    return claim


def test_a_live_claim_of_the_earlier_version_gets_in_flight_and_stores_nothing():
    loan = make_loan()
    _legacy_claim(loan, lease_seconds=60)
    with pytest.raises(RequestInFlight):
        _ingest(loan)
    assert TransactionItem.count() == 0 and QueueItem.count() == 0


def test_an_abandoned_claim_is_taken_over_by_the_same_request_only():
    loan = make_loan()
    _legacy_claim(loan, lease_seconds=-1)
    with pytest.raises(IdempotencyKeyReused):
        _ingest(loan, amount="7.00")
    result = _ingest(loan)
    assert result.status == 201 and not result.replayed
    stored = DedupItem.get(ingest._dedup_key("test", "key-1"))
    assert (stored.state, stored.txn_id) == ("DONE", result.body["txn_id"])
    assert _ingest(loan).replayed


def test_an_expired_key_is_free_for_another_payment():
    """DynamoDB deletes expired keys late: one past its expiry counts as absent."""
    loan = make_loan()
    first = _ingest(loan, amount="100.00")
    stored = DedupItem.get(ingest._dedup_key("test", "key-1"))
    stored.update(actions=[DedupItem.expires_at.set(timezone.now() - datetime.timedelta(days=1))])
    second = _ingest(loan, amount="200.00")
    assert second.status == 201 and not second.replayed
    assert second.body["txn_id"] != first.body["txn_id"] and TransactionItem.count() == 2


def test_the_wire_puts_are_the_models_own_items():
    """Ingestion sends its items in wire form without PynamoDB's TransactWrite: each is its
    model's serialisation, and each is read back as that model."""
    loan = make_loan()
    result = _ingest(loan, receipt_number="RC-9", collector="Asha")
    txn = TransactionItem.get(result.body["txn_id"])
    dedup = DedupItem.get(ingest._dedup_key("test", "key-1"))
    now = timezone.now()
    puts = ingest.accepted_puts(
        ingest.AcceptedItems(
            txn,
            dedup,
            QueueItem.get(txn.txn_id),
            next(AuditEventItem.query(f"payments.transaction#{txn.txn_id}")),
        ),
        request_hash=dedup.request_hash,
        now=now,
        unique_items=[UniqueKeyItem("receipt#1#RC-9", txn_id=txn.txn_id, created_at=iso(now))],
    )
    assert [put["TableName"] for put in puts] == [
        model.Meta.table_name
        for model in (DedupItem, TransactionItem, QueueItem, AuditEventItem, UniqueKeyItem)
    ]
    assert puts[1]["Item"] == txn.serialize() and puts[0]["Item"] == dedup.serialize()
    assert all(p["ConditionExpression"].startswith("attribute_not_exists(#k)") for p in puts)
    assert [p.get("ReturnValuesOnConditionCheckFailure") for p in puts] == [
        "ALL_OLD",
        None,
        None,
        None,
        "ALL_OLD",
    ]


def test_a_new_key_is_one_dynamodb_call_and_one_query(django_assert_num_queries):
    branch = BranchFactory()
    loan = make_loan(branch=branch)
    api_client, _ = make_api_client(branches=[branch])
    principal = ApiPrincipal(api_client)
    with count_dynamodb_calls() as calls, django_assert_num_queries(1):
        result = payment_ingest(
            payment=payment(loan, receipt_number="R-9"),
            idempotency_key="one-call-key",
            principal=principal,
            source=f"api:{api_client.pk}",
        )
    assert result.status == 201
    assert calls == ["TransactWriteItems"]
    assert UniqueKeyItem.count() == 1 and AuditEventItem.count() == 1


def test_a_replay_reads_the_key_from_the_cancelled_write_alone():
    loan = make_loan()
    first = _ingest(loan)
    with count_dynamodb_calls() as calls:
        second = _ingest(loan)
    assert second.replayed and second.body == first.body
    assert calls == ["TransactWriteItems"]  # the key came back with the cancellation


def test_an_accepted_payment_replays_after_its_loan_closed():
    loan = make_loan()
    first = _ingest(loan)
    LoanAccount.objects.filter(pk=loan.pk).update(status="CLOSED")
    replay = _ingest(loan)
    assert replay.replayed and replay.body == first.body
    with pytest.raises(IdempotencyKeyReused):
        _ingest(loan, amount="5.00")
    with pytest.raises(PaymentRejected):
        _ingest(loan, key="key-2")


@pytest.mark.parametrize("where", ["connection", "answer"])
def test_an_answer_lost_after_the_write_was_applied_is_retried_to_one_payment(monkeypatch, where):
    """The transaction is applied but its answer never arrives (a dropped connection, or
    an error answer of the service): the retry (same client request token) ends in one
    payment, answered as a first 201."""
    loan = make_loan()
    lost = []
    if where == "connection":  # the sender's own retry
        original = WireClient._attempt

        def answer_lost_once(client, operation, payload):
            response = original(client, operation, payload)
            if operation == "TransactWriteItems" and not lost:
                lost.append(operation)
                raise _Retry(EndpointConnectionError(endpoint_url="lost", error="dropped"))
            return response

        monkeypatch.setattr(WireClient, "_attempt", answer_lost_once)
    else:  # the transaction's retry (dynamo.transactions)
        original_call = WireClient.call

        def answer_lost_once(client, operation, body):
            response = original_call(client, operation, body)
            if operation == "TransactWriteItems" and not lost:
                lost.append(operation)
                raise client_error(
                    operation, 503, {"__type": "x#ServiceUnavailable", "message": "lost"}
                )
            return response

        monkeypatch.setattr(WireClient, "call", answer_lost_once)
    result = _ingest(loan, receipt_number="RC-7")
    assert lost and result.status == 201 and not result.replayed
    assert TransactionItem.count() == 1 and QueueItem.count() == 1
    assert TransactionItem.get(result.body["txn_id"]).receipt_number == "RC-7"


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
    loan = make_loan()
    with pytest.raises(PaymentRejected) as caught:
        _ingest(loan, business_date=datetime.date.today() + datetime.timedelta(days=5))
    assert caught.value.field == "business_date"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_store_one_transaction_and_all_get_its_answer():
    """Eight threads send the same payment (a receipt number too) with one key at the same
    moment: one is accepted, the seven others replay its answer; no 409, one of each item."""
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    results, errors = [], []
    barrier = threading.Barrier(8)

    def send():
        barrier.wait()
        try:
            results.append(_ingest(loan, key="same-key", principal=principal, receipt_number="C-1"))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 8
    assert len({r.body["txn_id"] for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert Decimal(results[0].body["amount"]) == Decimal("1000.00")
    assert TransactionItem.count() == 1 and QueueItem.count() == 1
    assert UniqueKeyItem.count() == 1 and DedupItem.count() == 1


@pytest.mark.parametrize("amount", ["1000.00", "999.00"])
def test_a_request_beaten_to_its_key_stores_nothing_and_gets_the_winners_answer(
    monkeypatch, amount
):
    """Between this request's validation and its write, another request with the same key
    (the same body, or another) is accepted: this one's write is refused on the key, it
    stores nothing (neither its transaction nor its receipt number) and answers as a
    replay of the winner, or a 409 for another body."""
    loan = make_loan()
    validate = ingest._validate
    won = []

    def beaten_meanwhile(payment, principal):
        result = validate(payment, principal)
        if not won:
            monkeypatch.setattr(ingest, "_validate", validate)
            won.append(_ingest(loan, amount=amount, receipt_number="RC-W"))
        return result

    monkeypatch.setattr(ingest, "_validate", beaten_meanwhile)
    if amount == "1000.00":
        result = _ingest(loan, receipt_number="RC-W")
        assert result.replayed and result.body == won[0].body
    else:
        with pytest.raises(IdempotencyKeyReused):
            _ingest(loan, receipt_number="RC-W")
    assert TransactionItem.count() == 1 and QueueItem.count() == 1
    assert [u.txn_id for u in UniqueKeyItem.scan()] == [won[0].body["txn_id"]]
