"""The operations lists of the admin: the runs of the run-once jobs (``core.jobs``)."""

from django.contrib import admin

from accounts.admin_base import HeadOfficeAdmin
from core.models import JobRun


@admin.register(JobRun)
class JobRunAdmin(HeadOfficeAdmin):
    """The daily jobs' runs (the mandate presentation, the DCR build), each over every
    branch: head office only, read-only. Times are IST."""

    list_display = [
        "name", "key", "state", "attempts", "figures", "started", "heartbeat", "finished",
        "owner",
    ]  # fmt: skip
    list_filter = ["state", "name"]
    fields = readonly_fields = [
        "name", "key", "state", "attempts", "figures", "started", "heartbeat", "lease",
        "finished", "owner", "progress", "error",
    ]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="figures")
    def figures(self, obj: JobRun) -> str:
        return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in obj.counts.items())

    @admin.display(description="started (IST)", ordering="started_at")
    def started(self, obj: JobRun):
        return obj.started_at

    @admin.display(description="last heartbeat (IST)", ordering="heartbeat_at")
    def heartbeat(self, obj: JobRun):
        return obj.heartbeat_at

    @admin.display(description="lease until (IST)")
    def lease(self, obj: JobRun):
        return obj.lease_until

    @admin.display(description="finished (IST)", ordering="finished_at")
    def finished(self, obj: JobRun):
        return obj.finished_at
