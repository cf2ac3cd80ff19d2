"""Copy the presentation runs (PresentationRun) into core.JobRun; 0007 drops them.

A run becomes the ``mandates_presentation`` job's run keyed by its date: finished ones DONE,
the others RUNNING with their lease (a lapsed one is taken over by the next claim), the
figures (presented, notices) in ``counts``."""

from django.db import migrations

JOB = "mandates_presentation"


def forward(apps, schema_editor):
    old, new = apps.get_model("mandates", "PresentationRun"), apps.get_model("core", "JobRun")
    new.objects.bulk_create(
        new(
            name=JOB,
            key=run.run_date.isoformat(),
            state="DONE" if run.finished_at else "RUNNING",
            lease_until=None if run.finished_at else run.claimed_until,
            started_at=run.started_at,
            heartbeat_at=run.finished_at or run.started_at,
            finished_at=run.finished_at,
            counts={"presented": run.presented, "notices": run.notices},
        )
        for run in old.objects.order_by("run_date")
    )


def backward(apps, schema_editor):
    old, new = apps.get_model("mandates", "PresentationRun"), apps.get_model("core", "JobRun")
    runs = new.objects.filter(name=JOB)
    old.objects.bulk_create(
        old(
            run_date=run.key,
            started_at=run.started_at,
            claimed_until=run.lease_until,
            finished_at=run.finished_at if run.state == "DONE" else None,
            presented=run.counts.get("presented", 0),
            notices=run.counts.get("notices", 0),
        )
        for run in runs.order_by("key")
    )
    runs.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_jobrun"),
        ("mandates", "0005_delete_mandatetransition"),
    ]

    operations = [migrations.RunPython(forward, backward)]
