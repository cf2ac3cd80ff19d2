import time

import pytest
from celery.contrib.testing.worker import start_worker

from audit.ddb_models import AuditEventItem
from audit.models import AuditOutbox
from audit.services import audit_record
from audit.tasks import audit_relay_task
from config.celery import app


def test_the_relay_is_on_beats_schedule():
    (entry,) = [e for e in app.conf.beat_schedule.values() if e["task"] == audit_relay_task.name]
    assert entry["schedule"] <= 10.0


@pytest.mark.django_db
def test_task_body_relays_and_is_idempotent():
    audit_record(instance_or_entity="loans.loanaccount#1", action="transition")
    assert audit_relay_task() == 1
    assert audit_relay_task() == 0


@pytest.mark.django_db(transaction=True)
def test_relay_task_runs_once_through_an_embedded_worker():
    AuditOutbox.objects.all().delete()
    # the commit also enqueues a relay; the explicit delay below is the beat's run
    row = audit_record(instance_or_entity="loans.loanaccount#77", action="transition")
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        audit_relay_task.delay()
        deadline = time.monotonic() + 20
        while (
            AuditOutbox.objects.filter(relayed_at__isnull=True).exists()
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
    assert AuditOutbox.objects.get(pk=row.pk).relayed_at is not None
    assert [i.event_id for i in AuditEventItem.query("loans.loanaccount#77")] == [row.event_id]


# --- The outbox purge -------------------------------------------------------------------


def test_the_outbox_purge_is_on_beats_schedule_daily():
    from celery.schedules import crontab

    from audit.tasks import audit_outbox_purge_task

    (entry,) = [
        e for e in app.conf.beat_schedule.values() if e["task"] == audit_outbox_purge_task.name
    ]
    assert isinstance(entry["schedule"], crontab)
    assert len(entry["schedule"].hour) == len(entry["schedule"].minute) == 1  # once a day


@pytest.mark.django_db(transaction=True)
def test_purge_task_deletes_long_relayed_rows_and_never_pending_ones(settings):
    import datetime

    from django.utils import timezone

    from audit.services import audit_relay_pending
    from audit.tasks import audit_outbox_purge_task

    settings.AUDIT_RELAY_ON_COMMIT = False  # the rows below stay pending until relayed here
    settings.AUDIT_OUTBOX_RETENTION_DAYS = 30
    AuditOutbox.objects.all().delete()
    old, recent = (
        audit_record(instance_or_entity=f"loans.loanaccount#{n}", action="transition")
        for n in (1, 2)
    )
    assert audit_relay_pending() == 2
    # a row that was never relayed, however old, is never purged (DynamoDB lacks it)
    pending = audit_record(instance_or_entity="loans.loanaccount#3", action="transition")
    long_ago = timezone.now() - datetime.timedelta(days=400)
    AuditOutbox.objects.filter(pk=pending.pk).update(occurred_at=long_ago)
    AuditOutbox.objects.filter(pk=old.pk).update(
        occurred_at=long_ago, relayed_at=timezone.now() - datetime.timedelta(days=31)
    )
    AuditOutbox.objects.filter(pk=recent.pk).update(
        relayed_at=timezone.now() - datetime.timedelta(days=29)
    )
    app.control.purge()  # relays enqueued by earlier tests' commits would relay `pending`
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        audit_outbox_purge_task.delay()
        deadline = time.monotonic() + 20
        while AuditOutbox.objects.filter(pk=old.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert set(AuditOutbox.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk}
    assert AuditOutbox.objects.get(pk=pending.pk).relayed_at is None
