"""The release outbox: a notification queued in a transaction that commits is released
even when the release after the commit is lost; one whose transaction rolls back never is."""

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notifications.channels import development_outbox
from notifications.models import Channel, NotificationStatus, PendingRelease
from notifications.services import notification_queue, notifications_release_pending
from notifications.tasks import notifications_dispatch_task
from tests.factories import MOBILE, receipt_context, reload, templates_seed

Status = NotificationStatus
NOW = dt.timedelta(0)


def _queue(**kwargs):
    return notification_queue(
        template_code="receipt",
        channel=Channel.SMS,
        recipient=MOBILE,
        context=receipt_context(),
        **kwargs,
    )


@pytest.mark.django_db
def test_the_release_after_commit_queues_it_and_removes_its_row(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        item = _queue()
        assert PendingRelease.objects.filter(notification_id=item.notification_id).exists()
    assert reload(item).status == Status.QUEUED
    assert not PendingRelease.objects.exists()
    assert notifications_release_pending(older_than=NOW) == 0


@pytest.mark.django_db
def test_a_lost_release_is_done_by_the_dispatcher_once(django_capture_on_commit_callbacks):
    # the caller committed, then its process died before the after-commit step ran
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        item = _queue()
    assert len(callbacks) == 1 and reload(item).status == Status.PENDING
    assert notifications_release_pending() == 0  # within the grace minute: not yet its turn

    assert notifications_release_pending(older_than=NOW) == 1
    assert reload(item).status == Status.QUEUED
    assert not PendingRelease.objects.exists()
    callbacks[0]()  # a late after-commit step changes nothing
    assert reload(item).status == Status.QUEUED
    assert notifications_release_pending(older_than=NOW) == 0


@pytest.mark.django_db
def test_the_dispatch_task_releases_and_sends_what_a_lost_release_left(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=False):
        item = _queue()
    PendingRelease.objects.update(created_at=timezone.now() - dt.timedelta(minutes=2))
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
    notifications_release_pending(older_than=NOW)
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
    assert not PendingRelease.objects.exists()
    assert notifications_release_pending(older_than=NOW) == 0
    assert reload(item).status == Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_release_each_notification_once():
    templates_seed()
    with transaction.atomic():
        items = [_queue() for _ in range(20)]
        connection.run_on_commit = []  # the process dies right after its commit
    assert {reload(i).status for i in items} == {Status.PENDING}
    start, results = threading.Barrier(2), []

    def dispatcher():
        start.wait()
        try:
            results.append(notifications_release_pending(older_than=NOW, limit=20))
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(results) == 20 and len(results) == 2
    assert {reload(i).status for i in items} == {Status.QUEUED}
    assert not PendingRelease.objects.exists()
