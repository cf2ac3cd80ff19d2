"""The posting queue's index key spread over shards: writers, sweeps and screens across
all of them, and the items an earlier release wrote without a shard key."""

import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.clock import iso
from payments import selectors
from payments.ddb_models import (
    QueueItem,
    TransactionItem,
    queue_count,
    queue_partitions,
    queue_query,
)
from payments.models import Posting
from payments.services import payment_ingest, payments_post_due
from tests.factories import UserFactory, make_loan, payment

pytestmark = pytest.mark.django_db


def _ingest(loan, principal, amount="10.00"):
    return payment_ingest(
        payment=payment(loan, amount=amount),
        idempotency_key=f"k-{time.time_ns()}",
        principal=principal,
        source="test",
    ).body["txn_id"]


@pytest.fixture
def principal():
    return UserFactory(is_superuser=True)


def test_items_spread_over_the_shards_and_the_sweep_posts_them_all(settings, principal):
    settings.PAYMENTS_QUEUE_SHARDS = 4
    loan = make_loan()
    txn_ids = {_ingest(loan, principal) for _ in range(12)}
    items = [QueueItem.get(t) for t in txn_ids]
    assert {i.queue_status for i in items} == {"POSTING#READY"}
    assert {i.queue_shard for i in items} <= set(queue_partitions("READY"))
    assert len({i.queue_shard for i in items}) > 1  # really spread
    assert queue_count("READY") == 12
    assert payments_post_due(limit=5) == {"posted": 5}  # a batch, the soonest due first
    assert payments_post_due(limit=50) == {"posted": 7}
    assert Posting.objects.filter(txn_id__in=txn_ids).count() == 12
    # finished work leaves the index: the READY shards and the whole index are empty
    assert queue_count("READY") == queue_count("LEASED") == 0
    assert all(QueueItem.get(t).queue_shard is None for t in txn_ids)
    assert all(QueueItem.get(t).queue_status == "POSTING#DONE" for t in txn_ids)


def test_claims_take_the_soonest_due_over_every_shard(settings, principal):
    settings.PAYMENTS_QUEUE_SHARDS = 4
    loan = make_loan()
    txn_ids = [_ingest(loan, principal) for _ in range(8)]
    # the last one ingested becomes the most overdue
    QueueItem(txn_ids[-1]).update(
        actions=[QueueItem.next_attempt_at.set(iso(timezone.now().replace(year=2020)))]
    )
    due = queue_query("READY", QueueItem.next_attempt_at <= iso(timezone.now()))
    assert due[0].item_id == txn_ids[-1]
    assert [i.next_attempt_at for i in due] == sorted(i.next_attempt_at for i in due)
    assert payments_post_due(limit=1) == {"posted": 1}
    assert Posting.objects.get().txn_id == txn_ids[-1]


def test_the_queue_screen_pages_through_every_shard_once_in_due_order(settings, principal):
    settings.PAYMENTS_QUEUE_SHARDS = 4
    loan = make_loan()
    txn_ids = {_ingest(loan, principal) for _ in range(11)}
    seen, cursor, pages = [], None, 0
    while True:
        page = selectors.queue_items(status="READY", user=principal, limit=3, cursor=cursor)
        seen += page.rows
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
    assert pages == 4
    assert sorted(r["item_id"] for r in seen) == sorted(txn_ids)  # each once
    assert [r["next_attempt"] for r in seen] == sorted(r["next_attempt"] for r in seen)
    assert selectors.queue_counts()["READY"] == 11


def _as_an_earlier_release_wrote_it(item_id: str) -> None:
    QueueItem(item_id).update(actions=[QueueItem.queue_shard.remove()])


def test_reshard_gives_earlier_items_their_shard_key_so_that_the_sweep_posts_them(principal):
    loan = make_loan()
    done = _ingest(loan, principal)
    assert payments_post_due() == {"posted": 1}
    waiting = _ingest(loan, principal)
    _as_an_earlier_release_wrote_it(waiting)
    assert payments_post_due() == {}  # invisible to the sharded index
    out = StringIO()
    call_command("payments_queue_reshard", stdout=out, verbosity=0)
    # the DONE item has no key either, and gets none: it only waits to expire
    assert out.getvalue().strip() == "posting queue: 2 items without a shard key, 1 given one"
    assert QueueItem.get(done).queue_shard is None
    assert QueueItem.get(waiting).queue_shard in queue_partitions("READY")
    assert payments_post_due() == {"posted": 1}
    again = StringIO()
    call_command("payments_queue_reshard", stdout=again, verbosity=0)
    assert again.getvalue().strip() == "posting queue: 2 items without a shard key, 0 given one"


def test_the_item_carries_what_posting_needs_and_an_item_without_it_still_posts(principal):
    loan = make_loan()
    copied = _ingest(loan, principal, amount="12.34")
    item, txn = QueueItem.get(copied), TransactionItem.get(copied)
    assert (item.loan_id, item.amount_paise, item.business_date, item.mode) == (
        txn.loan_id,
        1234,
        txn.business_date,
        txn.mode,
    )
    earlier = _ingest(loan, principal, amount="5.00")
    QueueItem(earlier).update(  # as an earlier release wrote it: posting reads the transaction
        actions=[
            QueueItem.loan_id.remove(),
            QueueItem.amount_paise.remove(),
            QueueItem.business_date.remove(),
            QueueItem.mode.remove(),
        ]
    )
    assert payments_post_due() == {"posted": 2}
    amounts = dict(Posting.objects.values_list("txn_id", "amount"))
    assert amounts == {copied: Decimal("12.34"), earlier: Decimal("5.00")}
    assert {TransactionItem.get(t).status for t in (copied, earlier)} == {"POSTED"}
