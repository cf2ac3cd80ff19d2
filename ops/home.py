"""What ops adds to the admin's start page (registered in ``OpsConfig.ready()``): head
office's panel of the daily jobs' latest runs, and the outbox's backlog."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse

from accounts.scoping import sees_everything
from core.models import JobRun, OutboxMessage

JOB_PERMISSION = "core.view_jobrun"
LATEST_RUNS = 5


def sees_every_branch(user) -> bool:
    return sees_everything(user)


def jobs_panel(request) -> str:
    runs = list(JobRun.objects.order_by("-started_at", "-id")[:LATEST_RUNS])
    context = {
        "runs": runs,
        "failed": JobRun.objects.filter(state=JobRun.State.FAILED).count(),
        "outbox_pending": (
            OutboxMessage.objects.filter(done_at__isnull=True).count()
            if request.user.has_perm("core.view_outboxmessage")
            else None
        ),
        "runs_url": reverse("admin:core_jobrun_changelist"),
        "outbox_url": reverse("admin:core_outboxmessage_changelist"),
    }
    return render_to_string("ops/home/jobs_panel.html", context, request=request)
