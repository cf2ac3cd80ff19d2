import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.cache import cache

from config.celery import app
from ops.tasks import HEARTBEAT_KEY, heartbeat_task


@pytest.mark.django_db(transaction=True)
def test_task_runs_through_an_embedded_worker_on_the_real_broker():
    assert cache.get(HEARTBEAT_KEY) is None
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        heartbeat_task.delay()
        deadline = time.monotonic() + 60
        while cache.get(HEARTBEAT_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.1)
    assert cache.get(HEARTBEAT_KEY) is not None


def test_beat_schedule_names_registered_tasks():
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_with_the_request_id_of_the_request_that_enqueued_it():
    from celery import shared_task

    from core import context

    seen = []

    @shared_task(name="ops.tests.capture_request_id")
    def capture():
        seen.append(context.current().request_id)

    token = context.bind(context.RequestContext(request_id="req-from-the-web-1"))
    try:
        with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
            capture.delay()
            deadline = time.monotonic() + 60
            while not seen and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        context.reset(token)
    assert seen == ["req-from-the-web-1"]


# --- Queues ---------------------------------------------------------------------------------


def _queued(queue: str) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen(queue)


@pytest.fixture
def queues():
    """This run's two queues, empty before and after the test."""
    names = (settings.CELERY_TASK_DEFAULT_QUEUE, settings.BACKGROUND_QUEUE)

    def purge():
        with app.connection_for_write() as conn:
            for name in names:
                conn.default_channel.queue_purge(name)

    purge()
    yield names
    purge()
    app.amqp.queues.select_add(settings.BACKGROUND_QUEUE)  # a worker below deselected it


def test_notifications_and_the_outbox_relay_go_to_the_background_queue(queues):
    from core.tasks import outbox_relay_task
    from notifications.tasks import notification_send_task, notifications_dispatch_task
    from payments.tasks import payment_post_task, payments_post_due_task, payments_post_these_task
    from reconciliation.tasks import reconciliation_tick_task

    default, background = queues
    for task in (notification_send_task, notifications_dispatch_task, outbox_relay_task):
        task.delay(*(["n-1"] if task is notification_send_task else []))
    payment_post_task.delay("t-1")
    payments_post_these_task.delay(["t-2", "t-3"])
    for task in (payments_post_due_task, reconciliation_tick_task):
        task.delay()
    # each message in exactly one queue: three there, four here
    assert (_queued(default), _queued(background)) == (4, 3)


@pytest.mark.django_db(transaction=True)
def test_a_posting_is_not_held_up_by_a_backlog_of_notifications(queues):
    from notifications.tasks import notification_send_task
    from payments.models import Posting
    from payments.services import payment_ingest
    from tests.factories import UserFactory, branch_with_loan, payment

    default, background = queues
    for i in range(300):
        notification_send_task.delay(f"backlog-{i}")
    _branch, loan = branch_with_loan()
    txn_id = payment_ingest(
        payment=payment(loan, amount="500.00"),
        idempotency_key="behind-the-backlog",
        principal=UserFactory(is_superuser=True),
        source="t",
    ).body["txn_id"]
    # its posting task (published by the process's publisher within its window), ahead of
    # nothing
    deadline = time.monotonic() + 10
    while _queued(default) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _queued(default) == 1
    # a worker of the default queue alone, as bin/run starts one
    with start_worker(app, perform_ping_check=False, pool="solo", queues=[default]):
        deadline = time.monotonic() + 30
        while not Posting.objects.filter(txn_id=txn_id).exists():
            assert time.monotonic() < deadline, "the posting waited"
            time.sleep(0.1)
    # the backlog waits for its own worker (the posting's outbox relays joined it)
    assert _queued(background) >= 300
