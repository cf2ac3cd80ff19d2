"""Copy the daily job runs (reconciliation.JobRun) into core.JobRun; 0006 drops them.

The job name and business date become the run's name and key; the branch figures go to
``counts``; a RUNNING run's lease ends a lease after its last heartbeat, as before. The
checkpoint starts empty: a run taken over builds every branch again, as it did."""

import datetime

from django.conf import settings
from django.db import migrations

FIGURES = ("branches_total", "branches_done")


def forward(apps, schema_editor):
    old, new = apps.get_model("reconciliation", "JobRun"), apps.get_model("core", "JobRun")
    lease = datetime.timedelta(seconds=settings.RECONCILIATION_JOB_LEASE_SECONDS)
    new.objects.bulk_create(
        new(
            name=run.job,
            key=run.business_date.isoformat(),
            state=run.state,
            owner=run.owner,
            lease_until=run.heartbeat_at + lease if run.state == "RUNNING" else None,
            attempts=run.attempts,
            started_at=run.started_at,
            heartbeat_at=run.heartbeat_at,
            finished_at=run.finished_at,
            counts={figure: getattr(run, figure) for figure in FIGURES},
            error=run.error,
        )
        for run in old.objects.order_by("business_date", "job")
    )


def backward(apps, schema_editor):
    old, new = apps.get_model("reconciliation", "JobRun"), apps.get_model("core", "JobRun")
    runs = new.objects.filter(name__startswith="dcr_")
    old.objects.bulk_create(
        old(
            job=run.name,
            business_date=run.key,
            state=run.state,
            owner=run.owner[:80],
            attempts=run.attempts,
            started_at=run.started_at,
            heartbeat_at=run.heartbeat_at or run.started_at,
            finished_at=run.finished_at,
            error=run.error,
            **{figure: run.counts.get(figure, 0) for figure in FIGURES},
        )
        for run in runs.order_by("key", "name")
    )
    runs.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_jobrun"),
        ("reconciliation", "0004_delete_dcr_dbs_history"),
    ]

    operations = [migrations.RunPython(forward, backward)]
