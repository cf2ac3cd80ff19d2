import time

import pytest
from celery.contrib.testing.worker import start_worker

from audit.ddb_models import AuditEventItem
from audit.models import AuditMessage
from audit.services import audit_record
from config.celery import app
from core.tasks import outbox_relay_task


@pytest.mark.django_db
def test_task_body_relays_and_is_idempotent():
    audit_record(instance_or_entity="loans.loanaccount#1", action="transition")
    assert outbox_relay_task() == 1
    assert outbox_relay_task() == 0


@pytest.mark.django_db(transaction=True)
def test_relay_task_runs_once_through_an_embedded_worker():
    AuditMessage.objects.all().delete()
    # the commit also enqueues a relay; the explicit delay below is the beat's run
    row = audit_record(instance_or_entity="loans.loanaccount#77", action="transition")
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        outbox_relay_task.delay()
        deadline = time.monotonic() + 20
        while (
            AuditMessage.objects.filter(done_at__isnull=True).exists()
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
    assert AuditMessage.objects.get(pk=row.pk).done_at is not None
    assert [i.event_id for i in AuditEventItem.query("loans.loanaccount#77")] == [row.event_id]
