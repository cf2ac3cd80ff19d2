"""One receipt number per branch, one external reference per API client, in every way in;
enforced by uniqueness items in the payment's own DynamoDB transaction."""

import contextlib
import json
import threading
from datetime import timedelta

import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from api import scopes
from audit.ddb_models import AuditEventItem
from loans.models import LoanAccount
from payments.ddb_models import DedupItem, QueueItem, TransactionItem, UniqueKeyItem
from payments.exceptions import DuplicateReceipt, DuplicateReference, PaymentRejected
from payments.integrity import integrity_check
from payments.services import payment_ingest, payments_post_due
from tests.factories import (
    BranchFactory,
    UserFactory,
    key_header,
    make_api_client,
    make_loan,
    payment,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/transactions"
WRITE = (scopes.TRANSACTIONS_WRITE, scopes.TRANSACTIONS_READ)


def _ingest(loan, key, principal, source="user:test", **kw):
    return payment_ingest(
        payment=payment(loan, **kw), idempotency_key=key, principal=principal, source=source
    )


def _intake_events() -> dict[str, AuditEventItem]:
    return {
        e.entity.partition("#")[2]: e
        for e in AuditEventItem.scan()
        if e.entity.startswith("payments.transaction#")
    }


def _post(client, key, body, idem, url=URL):
    return client.post(
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=idem,
        **key_header(key),
    )


def _body(loan, amount="2500.00", **kw):
    return {"loan_account": loan.loan_number, "amount": amount, "mode": "CASH", **kw}


def test_a_second_payment_with_a_receipt_of_the_branch_is_refused_naming_the_first():
    loan = make_loan()
    same_branch = make_loan(branch=loan.branch)
    principal = UserFactory(is_superuser=True)
    first = _ingest(loan, "key-1", principal, receipt_number="RC-7")
    with pytest.raises(DuplicateReceipt) as caught:
        _ingest(same_branch, "key-2", principal, amount="50.00", receipt_number="rc-7")
    assert caught.value.status == 409 and caught.value.code == "duplicate_receipt"
    assert caught.value.txn_id == first.body["txn_id"]
    assert caught.value.details == {"txn_id": first.body["txn_id"]}
    assert first.body["txn_id"] in caught.value.message
    assert caught.value.field == "receipt_number"
    # nothing of the refused payment: no transaction, queue item, audit event, key
    assert [t.txn_id for t in TransactionItem.scan()] == [first.body["txn_id"]]
    assert QueueItem.count() == 1 and UniqueKeyItem.count() == 1
    assert list(_intake_events()) == [first.body["txn_id"]]
    assert DedupItem.count() == 1


def test_the_same_receipt_in_another_branch_is_accepted():
    principal = UserFactory(is_superuser=True)
    here, there = make_loan(), make_loan(branch=BranchFactory())
    a = _ingest(here, "key-1", principal, receipt_number="RC-1")
    b = _ingest(there, "key-2", principal, receipt_number="RC-1")
    assert a.status == b.status == 201 and a.body["txn_id"] != b.body["txn_id"]
    assert TransactionItem.count() == 2


def test_the_same_key_and_body_replays_and_a_refused_key_stays_free():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    first = _ingest(loan, "key-1", principal, receipt_number="RC-1")
    again = _ingest(loan, "key-1", principal, receipt_number="RC-1")
    assert again.replayed and again.body == first.body  # a replay, not a 409
    for _ in range(2):  # the refusal is not stored: the same key and body, the same 409
        with pytest.raises(DuplicateReceipt):
            _ingest(loan, "key-2", principal, receipt_number="RC-1")
    corrected = _ingest(loan, "key-2", principal, receipt_number="RC-2")
    assert corrected.status == 201 and not corrected.replayed
    assert TransactionItem.count() == 2


def test_external_reference_is_unique_per_api_client_only():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    first = _ingest(loan, "key-1", principal, source="api:1", external_reference="UTR-9")
    with pytest.raises(DuplicateReference) as caught:
        _ingest(loan, "key-2", principal, source="api:1", external_reference="UTR-9")
    assert caught.value.code == "duplicate_external_reference"
    assert caught.value.txn_id == first.body["txn_id"]
    assert _ingest(loan, "key-1", principal, source="api:2", external_reference="UTR-9")
    # other ways in reuse references by design (NACH: the mandate's UMRN on every debit)
    assert _ingest(loan, "key-3", principal, source="nach:P1", external_reference="UTR-9")
    assert _ingest(loan, "key-4", principal, source="nach:P1", external_reference="UTR-9")
    assert TransactionItem.count() == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_with_one_receipt_store_exactly_one():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    accepted, refused, other = [], [], []
    barrier = threading.Barrier(10)

    def send(i: int) -> None:
        barrier.wait()
        try:
            accepted.append(_ingest(loan, f"key-{i}", principal, receipt_number="RC-RACE"))
        except DuplicateReceipt as exc:
            refused.append(exc)
        except Exception as exc:  # anything else fails the test below
            other.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other == []
    assert len(accepted) == 1 and len(refused) == 9
    winner = accepted[0].body["txn_id"]
    assert {exc.txn_id for exc in refused} == {winner}
    assert [t.txn_id for t in TransactionItem.scan()] == [winner]
    assert QueueItem.count() == 1 and list(_intake_events()) == [winner]
    assert DedupItem.count() == 1  # the nine refused keys are free again


def test_every_accepted_payment_has_its_audit_event_and_a_refused_one_none():
    loan = make_loan()
    closed = make_loan(branch=loan.branch)
    LoanAccount.objects.filter(pk=closed.pk).update(status="CLOSED")
    principal = UserFactory(is_superuser=True)
    ids = [
        _ingest(loan, f"key-{i}", principal, receipt_number=f"RC-{i}").body["txn_id"]
        for i in range(3)
    ]
    _ingest(loan, "key-0", principal, receipt_number="RC-0")  # a replay writes no second one
    with pytest.raises(DuplicateReceipt):
        _ingest(loan, "key-9", principal, receipt_number="RC-1")
    with pytest.raises(PaymentRejected):
        _ingest(closed, "key-8", principal, receipt_number="RC-8")
    events = _intake_events()
    assert sorted(events) == sorted(ids) and AuditEventItem.count() == 3
    event = events[ids[1]]
    assert event.event_id == ids[1] and event.action == "create"
    assert event.actor_id == str(principal.pk)
    changes = json.loads(event.changes)
    assert changes["amount"] == [None, "1000.00"] and changes["receipt_number"] == [None, "RC-1"]
    assert changes["status"] == [None, "RECEIVED"] and changes["source"] == [None, "user:test"]


def test_the_api_answers_409_duplicate_receipt_with_the_existing_txn_id(client):
    branch = BranchFactory()
    loan = make_loan(branch=branch)
    api_client, key = make_api_client(scopes=WRITE, branches=[branch])
    first = _post(client, key, _body(loan, receipt_number="RC-1"), "idem-0001")
    assert first.status_code == 201, first.content
    txn_id = first.json()["txn_id"]
    event = _intake_events()[txn_id]  # the API's intake is audited, with the client as actor
    assert event.actor_repr == f"api:{api_client.name}" and event.actor_id is None
    again = _post(client, key, _body(loan, receipt_number="RC-1"), "idem-0001")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    response = _post(client, key, _body(loan, amount="10.00", receipt_number="RC-1"), "idem-0002")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "duplicate_receipt"
    assert error["details"] == {"txn_id": txn_id} and txn_id in error["message"]
    assert list(error["fields"]) == ["receipt_number"]
    ref = _post(client, key, _body(loan, external_reference="UTR-1"), "idem-0003")
    assert ref.status_code == 201
    dup = _post(client, key, _body(loan, amount="9.00", external_reference="UTR-1"), "idem-0004")
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "duplicate_external_reference"
    assert dup.json()["error"]["details"] == {"txn_id": ref.json()["txn_id"]}
    _, other_key = make_api_client(scopes=WRITE, branches=[branch])
    assert (
        _post(client, other_key, _body(loan, external_reference="UTR-1"), "idem-0005").status_code
        == 201
    )
    assert TransactionItem.count() == 3 and AuditEventItem.count() == 3


def test_the_batch_refuses_a_receipt_repeated_in_it_or_recorded_before(client):
    branch = BranchFactory()
    loan = make_loan(branch=branch)
    _, key = make_api_client(scopes=WRITE, branches=[branch])
    earlier = _post(client, key, _body(loan, receipt_number="RC-0"), "idem-0001").json()
    items = [
        _body(loan, amount="100.00", receipt_number="RC-1"),
        _body(loan, amount="200.00", receipt_number="RC-1"),  # repeated inside the batch
        _body(loan, amount="300.00", receipt_number="RC-0"),  # recorded before
        _body(loan, amount="400.00", receipt_number="RC-2"),
    ]
    response = _post(client, key, {"items": items}, "batch-0001", url=f"{URL}/batch")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 409, 409, 201]
    first = results[0]["transaction"]["txn_id"]
    assert results[1]["error"]["code"] == "duplicate_receipt"
    assert results[1]["error"]["details"] == {"txn_id": first}
    assert results[2]["error"]["details"] == {"txn_id": earlier["txn_id"]}
    retry = _post(client, key, {"items": items}, "batch-0001", url=f"{URL}/batch")
    assert [r["status"] for r in retry.json()["results"]] == [201, 409, 409, 201]
    assert [r["replayed"] for r in retry.json()["results"]] == [True, False, False, True]
    assert TransactionItem.count() == 3
    assert sorted(_intake_events()) == sorted(
        [earlier["txn_id"], first, results[3]["transaction"]["txn_id"]]
    )


def test_refused_duplicates_leave_the_ledger_and_the_store_in_agreement():
    loan = make_loan()
    principal = UserFactory(is_superuser=True)
    for i in range(4):
        with contextlib.suppress(DuplicateReceipt):
            _ingest(loan, f"key-{i}", principal, amount="300.00", receipt_number=f"RC-{i % 2}")
    assert payments_post_due() == {"posted": 2}
    today = timezone.localdate()  # the application's day (IST), and tomorrow's after cut-off
    report = integrity_check(start=today - timedelta(days=1), end=today + timedelta(days=1))
    assert report.agrees, report.differences
    assert report.transactions == report.postings == 2


def test_the_schema_documents_the_409s_of_duplicates_on_both_write_endpoints(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    for path in ("/api/v1/transactions", "/api/v1/transactions/batch"):
        operation = schema["paths"][path]["post"]
        conflict = operation["responses"]["409"]
        assert "duplicate_receipt" in conflict["description"], path
        assert "duplicate_external_reference" in conflict["description"], path
        assert conflict["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    assert (
        "duplicate_receipt" in schema["paths"]["/api/v1/transactions/batch"]["post"]["description"]
    )
    details = schema["components"]["schemas"]["ErrorDetail"]["properties"]["details"]
    assert details["type"] == "object"
