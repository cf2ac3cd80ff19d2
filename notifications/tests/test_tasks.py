import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from config.celery import app
from notifications.channels import development_outbox
from notifications.models import Channel, NotificationStatus
from notifications.selectors import notification_get
from notifications.services import notification_queue
from tests.factories import MOBILE, receipt_context, templates_seed


@pytest.mark.django_db(transaction=True)
def test_queued_notification_is_sent_by_the_worker_after_commit():
    templates_seed()
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        with transaction.atomic():
            item = notification_queue(
                template_code="receipt",
                channel=Channel.SMS,
                recipient=MOBILE,
                context=receipt_context(),
            )
            # nothing is released or enqueued before the commit
            assert notification_get(notification_id=item.notification_id).status == "PENDING"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stored = notification_get(notification_id=item.notification_id)
            if stored.status == NotificationStatus.SENT:
                break
            time.sleep(0.1)
    assert stored.status == NotificationStatus.SENT
    assert [e["notification_id"] for e in development_outbox()] == [item.notification_id]


def test_beat_dispatches_notifications_every_30_seconds():
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["notifications-dispatch"]
    assert entry["task"] == "notifications.tasks.notifications_dispatch_task"
    assert entry["schedule"] == 30.0
    assert entry["task"] in app.tasks
