import time

import pytest
from celery.contrib.testing.worker import start_worker
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

    from ops import context

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
