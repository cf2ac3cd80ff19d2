from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import re_path, reverse
from django.views.decorators.http import require_POST
from pynamodb.exceptions import PynamoDBConnectionError

from accounts.scoping import sees_everything
from core.admin.base import BackOfficeModelAdmin
from core.admin.dynamo import DynamoAdmin

from .channels import PROVIDERS, provider_setting
from .exceptions import NotificationError
from .models import Channel, NotificationStatus, NotificationTemplate, Outbox
from .selectors import development_outbox_masked, notification_get, notification_page
from .services import notification_retry

VIEW_PERMISSION = "notifications.view_notificationtemplate"
RETRY_PERMISSION = "notifications.change_notificationtemplate"
_ULID = r"(?P<notification_id>[0-9A-HJKMNP-TV-Z]{26})"


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(BackOfficeModelAdmin):
    list_display = ["code", "channel", "subject", "is_active", "updated_at"]
    list_filter = ["channel", "is_active"]
    search_fields = ["code", "subject", "body"]
    readonly_fields = ["updated_at"]
    fields = ["code", "channel", "is_active", "subject", "body", "updated_at"]


@admin.register(Outbox)
class OutboxAdmin(DynamoAdmin):
    """Read-only views of the notifications in DynamoDB: a list by status and channel (the
    ``status_channel_shard`` index, its shards merged page by page), a detail page
    with the rendered message, and a retry button for FAILED ones. Recipients are always
    masked. Viewing needs ``view_notificationtemplate``; retrying ``change_...``."""

    list_per_page = 50
    default_status = NotificationStatus.FAILED
    default_channel = Channel.SMS

    # The index shows "Outbox" to whoever may view; there is nothing to add or delete.
    # Notifications carry no branch (their bodies name customers and loans of every
    # branch), so the outbox is head-office data, like bank statements: only users who
    # see every branch may open it.
    def can_view(self, request) -> bool:
        return request.user.has_perm(VIEW_PERMISSION) and sees_everything(request.user)

    def can_retry(self, request) -> bool:
        return request.user.has_perm(RETRY_PERMISSION) and sees_everything(request.user)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            re_path(r"^$", wrap(self.list_view), name="notifications_outbox_changelist"),
            re_path(
                r"^development/$",
                wrap(self.development_view),
                name="notifications_outbox_development",
            ),
            re_path(rf"^{_ULID}/$", wrap(self.detail_view), name="notifications_outbox_detail"),
            re_path(
                rf"^{_ULID}/retry/$",
                wrap(require_POST(self.retry_view)),
                name="notifications_outbox_retry",
            ),
        ]

    def page_context(self, request, title: str, **extra) -> dict:
        shows_development_outbox = any(
            provider_setting(channel) in {"development", PROVIDERS["development"]}
            for channel in (Channel.SMS, Channel.PUSH)
        )
        return super().page_context(
            request, title, shows_development_outbox=shows_development_outbox, **extra
        )

    def list_view(self, request):
        self.require_view(request)
        status = request.GET.get("status", self.default_status)
        channel = request.GET.get("channel", self.default_channel)
        if status not in NotificationStatus.values:
            status = self.default_status
        if channel not in Channel.values:
            channel = self.default_channel
        cursor = request.GET.get("cursor") or None
        items, next_cursor = [], None
        try:
            page = notification_page(
                status=status, channel=channel, page_size=self.list_per_page, cursor=cursor
            )
            items, next_cursor = page.items, page.next_cursor
        except PynamoDBConnectionError:
            messages.error(request, "The notification store (DynamoDB) cannot be reached.")
        context = self.page_context(
            request,
            "Notification outbox",
            items=items,
            status=status,
            channel=channel,
            statuses=NotificationStatus.choices,
            channels=Channel.choices,
            cursor=cursor,
            next_cursor=next_cursor,
        )
        return TemplateResponse(request, "admin/notifications/outbox/list.html", context)

    def detail_view(self, request, notification_id: str):
        self.require_view(request)
        item = notification_get(notification_id=notification_id)
        if item is None:
            raise Http404("No such notification (or it has expired).")
        context = self.page_context(
            request,
            f"Notification {notification_id}",
            item=item,
            can_retry=self.can_retry(request) and item.status == NotificationStatus.FAILED,
        )
        return TemplateResponse(request, "admin/notifications/outbox/detail.html", context)

    def retry_view(self, request, notification_id: str):
        if not self.can_retry(request):
            raise PermissionDenied
        try:
            notification_retry(notification_id=notification_id, actor=request.user)
        except NotificationError as exc:
            self.message_user(request, f"Not re-queued: {exc}", messages.ERROR)
        else:
            self.message_user(request, "Re-queued: it will be sent shortly.", messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:notifications_outbox_detail", args=[notification_id])
        )

    def development_view(self, request):
        self.require_view(request)
        context = self.page_context(
            request, "Development outbox", entries=development_outbox_masked(limit=100)
        )
        return TemplateResponse(request, "admin/notifications/outbox/development.html", context)
