"""The release through the outbox: a notification queued in a transaction that commits is
released even when the release after the commit is lost; one whose transaction rolls back
never is."""

import datetime as dt
from functools import partial

import pytest
from django.db import connection, transaction
from django.utils import timezone

from core.models import OutboxMessage
from core.outbox import INLINE_GRACE, outbox_relay
from core.tasks import outbox_relay_task
from notifications.channels import development_outbox
from notifications.models import RELEASE_TOPIC, Channel, NotificationStatus
from notifications.services import notification_queue
from notifications.tasks import notifications_dispatch_task
from tests.concurrency import in_threads
from tests.factories import MOBILE, receipt_context, reload, templates_seed

Status = NotificationStatus
RELEASES = OutboxMessage.objects.filter(topic=RELEASE_TOPIC)


def relay_releases(*, later: bool = True, **kwargs) -> int:
    """The outbox relay, for releases; ``later``: once the grace minute of the after-commit
    step has passed."""
    now = timezone.now() + (INLINE_GRACE + dt.timedelta(seconds=1) if later else dt.timedelta())
    return outbox_relay(topics=[RELEASE_TOPIC], now=now, **kwargs)[RELEASE_TOPIC]


def _queue(**kwargs):
    return notification_queue(
        template_code="receipt",
        channel=Channel.SMS,
        recipient=MOBILE,
        context=receipt_context(),
        **kwargs,
    )


@pytest.mark.django_db
def test_the_release_after_commit_queues_it_and_marks_its_message_done(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        item = _queue()
        assert RELEASES.filter(key=item.notification_id, done_at__isnull=True).exists()
    assert reload(item).status == Status.QUEUED
    assert not RELEASES.filter(done_at__isnull=True).exists()
    assert relay_releases() == 0


@pytest.mark.django_db
def test_a_lost_release_is_done_by_the_relay_once(django_capture_on_commit_callbacks):
    # the caller committed, then its process died before the after-commit step ran
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        item = _queue()
    assert len(callbacks) == 1 and reload(item).status == Status.PENDING
    assert relay_releases(later=False) == 0  # within the grace minute: not yet its turn

    assert relay_releases() == 1
    assert reload(item).status == Status.QUEUED
    assert not RELEASES.filter(done_at__isnull=True).exists()
    callbacks[0]()  # a late after-commit step changes nothing
    assert reload(item).status == Status.QUEUED
    assert relay_releases() == 0


@pytest.mark.django_db
def test_the_relay_task_releases_and_the_dispatch_task_sends_what_a_lost_release_left(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=False):
        item = _queue()
    RELEASES.update(available_at=timezone.now() - dt.timedelta(minutes=1))  # 2 minutes on
    outbox_relay_task()
    notifications_dispatch_task()
    assert reload(item).status == Status.SENT
    assert [e["notification_id"] for e in development_outbox()] == [item.notification_id]


@pytest.mark.django_db
def test_a_scheduled_notification_is_released_but_waits_for_its_time(
    django_capture_on_commit_callbacks,
):
    later = timezone.now() + dt.timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=False):
        item = _queue(scheduled_at=later)
    relay_releases()
    stored = reload(item)
    assert stored.status == Status.QUEUED and stored.scheduled_at > timezone.now().isoformat()
    notifications_dispatch_task()
    assert reload(item).status == Status.QUEUED
    assert development_outbox() == []


@pytest.mark.django_db
def test_a_rolled_back_caller_leaves_nothing_to_release(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        item = _queue()
        raise RuntimeError("the payment failed")
    assert not RELEASES.exists()
    assert relay_releases() == 0
    assert reload(item).status == Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_release_each_notification_once():
    templates_seed()
    with transaction.atomic():
        items = [_queue() for _ in range(20)]
        connection.run_on_commit = []  # the process dies right after its commit
    assert {reload(i).status for i in items} == {Status.PENDING}
    relay = partial(relay_releases, limit=20)
    results = in_threads(relay, relay, timeout=30, raise_errors=True)
    assert sum(results) == 20 and len(results) == 2
    assert {reload(i).status for i in items} == {Status.QUEUED}
    assert not RELEASES.filter(done_at__isnull=True).exists()
