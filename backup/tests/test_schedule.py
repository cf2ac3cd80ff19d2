"""The daily backup (guarded, pruned, measured) and the restore drill, against the real
PostgreSQL server and DynamoDB Local."""

import datetime
import json
import os
import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backup import BackupError
from backup.schedule import JOB, backup_daily, backup_prune, backups
from backup.services import FORMAT, backup_check
from backup.tasks import backup_daily_task
from config.celery import app, route_task
from core.jobs import job_claim
from core.models import JobRun
from dynamo.connection import boto3_client
from payments.services import payment_ingest
from tests.factories import UserFactory, make_loan, payment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path):
    settings.BACKUP_DIRECTORY = tmp_path / "backups"
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    return settings.BACKUP_DIRECTORY


@pytest.fixture
def some_data():
    loan = make_loan()
    payment_ingest(
        payment=payment(loan, amount="1500.00"),
        idempotency_key="schedule-1",
        principal=UserFactory(is_superuser=True),
        source="test",
    )
    return loan


def _fake_backup(where, name: str, age_days: float):
    path = where / name
    path.mkdir(parents=True)
    created = timezone.now() - datetime.timedelta(days=age_days)
    (path / "manifest.json").write_text(
        json.dumps({"format": FORMAT, "created_at": created.isoformat()})
    )
    return path


def _metric(client, name: str) -> float | None:
    text = client.get("/metrics").content.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def test_daily_backup_writes_a_good_backup_prunes_old_ones_and_runs_once(
    some_data, backup_dir, settings, client
):
    old = _fake_backup(backup_dir, "backup-20260101T000000Z", age_days=10)
    recent = _fake_backup(backup_dir, "backup-20261201T000000Z", age_days=3)
    partial = backup_dir / ".backup-20261130T000000Z.partial-abc"
    partial.mkdir()
    long_ago = time.time() - settings.BACKUP_LEASE_SECONDS - 60
    os.utime(partial, (long_ago, long_ago))
    fresh_partial = backup_dir / ".backup-now.partial-def"  # a run at it now: kept
    fresh_partial.mkdir()

    today = timezone.localdate()
    counts = backup_daily(today=today)

    assert counts["pruned"] == 2
    newest = backups()[0].path
    assert str(newest) == counts["path"]
    assert backup_check(directory=newest)["postgres"]["tables"]["public.loans_loanaccount"]
    assert counts["size_bytes"] > 0 and counts["duration_seconds"] > 0
    assert not old.exists() and not partial.exists()
    assert recent.exists() and fresh_partial.exists()
    assert backup_daily(today=today) is None  # done for the date: a second run skips
    assert len(backups()) == 2

    run = JobRun.objects.get(name=JOB, key=today.isoformat())
    assert _metric(client, "backoffice_backup_last_success_timestamp_seconds") == pytest.approx(
        run.finished_at.timestamp()
    )
    assert _metric(client, "backoffice_backup_last_run_success") == 1
    assert _metric(client, "backoffice_backup_last_size_bytes") == counts["size_bytes"]
    assert _metric(client, "backoffice_backup_last_duration_seconds") == counts["duration_seconds"]


def test_a_run_held_by_another_worker_is_skipped(backup_dir):
    today = timezone.localdate()
    job_claim(name=JOB, key=today, lease=datetime.timedelta(hours=1), owner="other-worker")
    assert backup_daily(today=today) is None
    assert backups() == []


def test_the_newest_backup_is_kept_however_old(backup_dir):
    only = _fake_backup(backup_dir, "backup-20250101T000000Z", age_days=300)
    older = _fake_backup(backup_dir, "backup-20240101T000000Z", age_days=400)
    not_a_backup = backup_dir / "notes"
    not_a_backup.mkdir()
    assert backup_prune() == [older]
    assert only.exists() and not_a_backup.exists()


def test_a_failed_backup_is_recorded_and_reported_by_the_metrics(backup_dir, client):
    assert _metric(client, "backoffice_backup_last_success_timestamp_seconds") == 0  # never
    assert _metric(client, "backoffice_backup_last_run_success") == 1  # nothing failed yet
    backup_dir.parent.mkdir(parents=True, exist_ok=True)
    backup_dir.write_text("a file where the directory should be")
    with pytest.raises(BackupError):
        backup_daily(today=timezone.localdate())
    run = JobRun.objects.get(name=JOB)
    assert run.state == JobRun.State.FAILED
    assert "cannot write the backup" in run.error
    assert _metric(client, "backoffice_backup_last_run_success") == 0
    assert _metric(client, "backoffice_backup_last_success_timestamp_seconds") == 0
    assert _metric(client, "backoffice_backup_last_size_bytes") is None


def test_beat_runs_the_backup_daily_on_the_background_queue(settings):
    entry = app.conf.beat_schedule["backup-daily"]
    assert entry["task"] == "backup.tasks.backup_daily_task"
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {settings.BACKUP_HOUR}
    assert entry["schedule"].minute == {settings.BACKUP_MINUTE}
    routed = route_task("backup.tasks.backup_daily_task", (), {}, {})
    assert routed == {"queue": settings.BACKGROUND_QUEUE}


def test_the_task_backs_up_through_an_embedded_worker(some_data, backup_dir):
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        backup_daily_task.delay()
        deadline = time.monotonic() + 300
        while (
            time.monotonic() < deadline
            and not JobRun.objects.filter(name=JOB, state=JobRun.State.DONE).exists()
        ):
            time.sleep(0.2)
    run = JobRun.objects.get(name=JOB)
    assert run.state == JobRun.State.DONE, run.error
    assert [b.path for b in backups()] == [backup_dir / run.counts["path"].rsplit("/", 1)[-1]]


# --- Drill ------------------------------------------------------------------------------------


def _drill_leftovers() -> tuple[set, set]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'drill\\_%'")
        databases = {row[0] for row in cursor.fetchall()}
    names = boto3_client().get_paginator("list_tables").paginate().build_full_result()
    return databases, {n for n in names.get("TableNames", []) if n.startswith("drill_")}


def test_drill_restores_the_newest_backup_verifies_it_and_drops_the_scratch_copies(
    some_data, backup_dir, capsys
):
    before = _drill_leftovers()
    _fake_backup(backup_dir, "backup-20200101T000000Z", age_days=2000)  # older: not drilled
    call_command("backup_create", "--output", str(backup_dir / "backup-20261207T000000Z"))
    capsys.readouterr()

    call_command("backup_drill")

    out = capsys.readouterr().out
    assert "restoring " + str(backup_dir / "backup-20261207T000000Z") in out
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"drill of {backup_dir / 'backup-20261207T000000Z'} passed: ")
    assert "DynamoDB tables (" in last
    assert _drill_leftovers() == before


def test_drill_of_a_corrupted_backup_fails_in_one_line_and_leaves_nothing(some_data, backup_dir):
    before = _drill_leftovers()
    target = backup_dir / "backup-20261207T000000Z"
    call_command("backup_create", "--output", str(target))
    with (target / "postgres.dump").open("ab") as dump:
        dump.write(b"tampered")
    with pytest.raises(CommandError) as failure:
        call_command("backup_drill")
    assert "\n" not in str(failure.value)
    assert "does not match its SHA-256" in str(failure.value)
    assert _drill_leftovers() == before


def test_drill_without_any_backup_says_so(backup_dir):
    with pytest.raises(CommandError, match=r"no backup in .* to drill"):
        call_command("backup_drill")
