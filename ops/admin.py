"""The operations lists of the admin, read-only, for head office: the runs of the run-once
jobs (``core.jobs``) and the outbox's messages (``core.outbox``). A message stuck pending
shows its attempts, its last error and when it is tried next; the relay keeps retrying it,
and the backlog metric counts it."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from accounts.admin_base import HeadOfficeAdmin
from core.models import JobRun, OutboxMessage
from core.outbox import registered_topics


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


class TopicFilter(admin.SimpleListFilter):
    """The registered topics (no ``SELECT DISTINCT`` over the whole table)."""

    title = "topic"
    parameter_name = "topic"

    def lookups(self, request, model_admin):
        return [(topic, topic) for topic in registered_topics()]

    def queryset(self, request, queryset):
        return queryset.filter(topic=self.value()) if self.value() else queryset


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("failing", "Pending, failed before"), ("done", "Done")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(done_at__isnull=True)
        if self.value() == "failing":
            return queryset.filter(done_at__isnull=True, attempts__gt=0)
        if self.value() == "done":
            return queryset.filter(done_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(HeadOfficeAdmin):
    """Every topic's messages, newest first; times in IST (the site's time zone)."""

    list_display = [
        "topic",
        "key",
        "state",
        "attempts",
        "error",
        "created_at",
        "available_at",
        "done_at",
    ]
    list_filter = [TopicFilter, StateFilter]
    search_fields = ["=key"]
    search_help_text = "Key (exact): an event, notification, execution or transaction id."
    sortable_by = []
    ordering = ["-id"]
    fields = readonly_fields = [
        "topic",
        "key",
        "ref",
        "state",
        "attempts",
        "last_error",
        "created_at",
        "available_at",
        "done_at",
        "payload",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="state")
    def state(self, obj: OutboxMessage) -> str:
        if obj.done_at is not None:
            return "done"
        return "retrying" if obj.attempts else "pending"

    @admin.display(description="last error")
    def error(self, obj: OutboxMessage) -> str:
        text = obj.last_error
        if len(text) <= 80:
            return text
        return format_html('<span title="{}">{}…</span>', text, text[:80])
