"""The relay copies audit events from the outbox to DynamoDB Local: at least once, never
twice."""

import datetime
import json
import socket
from functools import partial

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.ddb_models import AuditEventItem
from audit.models import AuditMessage
from audit.services import audit_record, event_item
from core.outbox import backoff, outbox_purge, outbox_relay
from dynamo.connection import boto3_client
from tests.concurrency import in_threads, relay_all
from tests.factories import UserFactory


def record_events(n: int) -> list[AuditMessage]:
    return [
        audit_record(
            instance_or_entity=f"loans.loanaccount#{i}",
            action="transition",
            changes={"status": ["DRAFT", "ACTIVE"], "amount": ["0.00", "1500.00"]},
        )
        for i in range(n)
    ]


def stored_count() -> int:
    return sum(1 for _ in AuditEventItem.scan())  # a test may scan; the code never does


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_relay_writes_each_event_once_and_marks_it_relayed():
    rows = record_events(3)
    assert outbox_relay()["audit"] == 3
    assert not AuditMessage.objects.filter(done_at__isnull=True).exists()
    assert outbox_relay()["audit"] == 0  # run twice: nothing left, nothing duplicated
    assert stored_count() == 3
    item = AuditEventItem.get(rows[0].entity, event_item(rows[0]).sk, consistent_read=True)
    assert item.event_id == rows[0].event_id
    assert item.action == "transition"
    assert json.loads(item.changes) == {
        "amount": ["0.00", "1500.00"],
        "status": ["DRAFT", "ACTIVE"],
    }


@pytest.mark.django_db
def test_an_event_already_in_dynamodb_is_not_written_again():
    (row,) = record_events(1)
    event_item(row).save()  # a relay that died after the put, before marking the message
    assert outbox_relay()["audit"] == 1
    assert stored_count() == 1
    assert AuditMessage.objects.get(pk=row.pk).done_at is not None


@pytest.mark.django_db
def test_relay_takes_at_most_limit_rows_oldest_first():
    rows = record_events(5)
    assert outbox_relay(limit=2)["audit"] == 2
    pending = AuditMessage.objects.filter(done_at__isnull=True).order_by("id")
    assert [r.pk for r in pending] == [r.pk for r in rows[2:]]


@pytest.mark.django_db
def test_items_carry_keys_indexes_and_retention():
    actor = UserFactory(username="maker")
    AuditMessage.objects.all().delete()
    row = audit_record(instance_or_entity="loans.loanaccount#7", action="transition", actor=actor)
    with override_settings(AUDIT_RETENTION_DAYS=30):
        outbox_relay()
    (item,) = AuditEventItem.query("loans.loanaccount#7")
    assert item.sk == f"{item.ts}#{row.event_id}"
    assert item.ts.endswith("Z") and len(item.ts) == 27
    local_day = timezone.localdate(row.occurred_at).isoformat()
    assert item.day.startswith(f"day#{local_day}#") and 0 <= int(item.day.rsplit("#", 1)[1]) < 8
    assert item.actor_id == str(actor.pk)
    assert item.expires_at == (row.occurred_at + datetime.timedelta(days=30)).replace(microsecond=0)


@pytest.mark.django_db
def test_dynamodb_down_keeps_rows_pending_until_it_is_back():
    record_events(2)
    with override_settings(DYNAMODB_ENDPOINT=f"http://127.0.0.1:{closed_port()}"):
        assert outbox_relay()["audit"] == 0
    pending = AuditMessage.objects.filter(done_at__isnull=True)
    assert pending.count() == 2
    for message in pending:
        assert message.attempts == 1
        assert message.last_error.startswith("AuditStoreUnavailable: DynamoDB unavailable")
    assert outbox_relay()["audit"] == 0  # backing off: retried later, not at once
    assert outbox_relay(now=timezone.now() + backoff(1))["audit"] == 2
    assert stored_count() == 2


@pytest.mark.django_db
def test_pii_and_secrets_never_reach_the_stored_item():
    user = UserFactory(username="kyc-clerk", mobile="9876543210")
    user.set_password("An0ther-pass-2026")
    user.mobile = "9123456789"
    user.save()
    raw_hash = user.password
    outbox_relay()
    client = boto3_client()
    stored = client.query(
        TableName=AuditEventItem.Meta.table_name,
        KeyConditionExpression="entity = :e",
        ExpressionAttributeValues={":e": {"S": f"accounts.user#{user.pk}"}},
        ConsistentRead=True,
    )["Items"]
    assert len(stored) == 2  # create and update
    text = json.dumps(stored)
    for raw in (raw_hash, "9876543210", "9123456789", "An0ther-pass-2026"):
        assert raw not in text
    assert "XXXXXX3210" in text and "XXXXXX6789" in text and "***" in text


@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_share_the_rows_and_never_duplicate():
    AuditMessage.objects.all().delete()
    record_events(60)
    relay = partial(relay_all, "audit", limit=7)
    counts = in_threads(relay, relay, raise_errors=True)
    assert sum(counts) == 60
    assert not AuditMessage.objects.filter(done_at__isnull=True).exists()
    assert stored_count() == 60
    assert outbox_relay()["audit"] == 0


@pytest.mark.django_db
def test_purge_deletes_only_long_relayed_rows():
    old, recent, pending = record_events(3)
    outbox_relay(limit=2)
    AuditMessage.objects.filter(pk=old.pk).update(
        done_at=timezone.now() - datetime.timedelta(days=31)
    )
    assert outbox_purge(older_than_days=30) == 1
    assert set(AuditMessage.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk}


@pytest.mark.django_db
def test_an_event_about_a_dynamodb_write_goes_into_its_transaction():
    from pynamodb.transactions import TransactWrite

    from audit.services import audit_event_item
    from dynamo.connection import pynamodb_connection

    item = audit_event_item(
        entity="payments.transaction#01J0000000000000000000TXN1",
        action="create",
        changes={"amount_paise": [None, 150000], "mode": [None, "CASH"]},
    )
    with TransactWrite(connection=pynamodb_connection()) as tx:
        tx.save(item, condition=AuditEventItem.entity.does_not_exist())
    (stored,) = AuditEventItem.query("payments.transaction#01J0000000000000000000TXN1")
    assert stored.event_id == item.event_id
    assert json.loads(stored.changes) == {"amount_paise": [None, 150000], "mode": [None, "CASH"]}
    assert not AuditMessage.objects.exists()  # no outbox message: the transaction carried it


@pytest.mark.django_db
def test_purge_keeps_the_retention_setting_and_never_deletes_pending_rows(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    relayed_long_ago, relayed_lately, pending = record_events(3)
    outbox_relay(limit=2)
    long_ago = timezone.now() - datetime.timedelta(days=3650)
    AuditMessage.objects.filter(pk=pending.pk).update(created_at=long_ago)
    AuditMessage.objects.filter(pk=relayed_long_ago.pk).update(
        done_at=timezone.now() - datetime.timedelta(days=8)
    )
    AuditMessage.objects.filter(pk=relayed_lately.pk).update(
        done_at=timezone.now() - datetime.timedelta(days=6)
    )
    assert outbox_purge() == 1
    assert set(AuditMessage.objects.values_list("pk", flat=True)) == {
        relayed_lately.pk,
        pending.pk,
    }
