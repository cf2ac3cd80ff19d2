"""The ``status#channel`` index key spread over shards: the dispatcher and the outbox
pages read all of them; notifications written before sharding get their key."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from notifications.ddb_models import NotificationItem, status_partitions
from notifications.models import Channel, NotificationStatus
from notifications.selectors import notification_page
from notifications.services import notifications_dispatch_due
from tests.factories import queued, reload

Status = NotificationStatus
pytestmark = pytest.mark.django_db


def test_notifications_spread_over_shards_and_the_dispatcher_sends_them_all(settings):
    settings.NOTIFICATIONS_QUEUE_SHARDS = 4
    items = [reload(queued()) for _ in range(10)]
    shards = {item.status_channel_shard for item in items}
    assert shards <= set(status_partitions(Status.QUEUED, Channel.SMS)) and len(shards) > 1
    assert notifications_dispatch_due() == {Status.SENT: 10}
    sent = [reload(item) for item in items]
    assert {item.status_channel_shard for item in sent} <= set(
        status_partitions(Status.SENT, Channel.SMS)
    )


def test_outbox_pages_merge_the_shards_latest_first_each_item_once(settings):
    settings.NOTIFICATIONS_QUEUE_SHARDS = 4
    now = timezone.now()
    ids = [queued(scheduled_at=now + timedelta(minutes=i)).notification_id for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        page = notification_page(
            status=Status.QUEUED, channel=Channel.SMS, page_size=3, cursor=cursor
        )
        seen += page.items
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(item.notification_id for item in seen) == sorted(ids)
    assert [i.scheduled_at for i in seen] == sorted((i.scheduled_at for i in seen), reverse=True)
    assert pages == 3


def test_reshard_gives_earlier_notifications_their_shard_key():
    item = queued()
    NotificationItem(item.notification_id).update(
        actions=[NotificationItem.status_channel_shard.remove()]
    )
    assert notification_page(status=Status.QUEUED, channel=Channel.SMS).items == []
    out = StringIO()
    call_command("notifications_reshard", stdout=out, verbosity=0)
    assert out.getvalue().strip() == "notifications: 1 without a shard key, 1 given one"
    page = notification_page(status=Status.QUEUED, channel=Channel.SMS)
    assert [i.notification_id for i in page.items] == [item.notification_id]
    assert notifications_dispatch_due() == {Status.SENT: 1}
