"""Channel adapters: ``send(notification) -> provider_message_id``.

EMAIL goes through Django's email backends (``EMAIL_BACKEND``). SMS and PUSH go through
the provider named by ``NOTIFICATIONS_SMS_PROVIDER`` / ``NOTIFICATIONS_PUSH_PROVIDER``:
``"development"`` or the dotted path of an adapter class. A failure that may pass raises
``ChannelError`` (the sender retries with backoff); a refusal for good raises
``PermanentChannelError``. Adapters get the notification id, which a real provider should
receive as the client reference so that it can drop a resend after a lost reply.
"""

from __future__ import annotations

import functools
import json
import smtplib
from email.utils import make_msgid
from typing import TYPE_CHECKING, Protocol

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone
from django.utils.module_loading import import_string
from ulid import ULID

from .exceptions import ChannelError, PermanentChannelError
from .models import Channel

if TYPE_CHECKING:
    from .ddb_models import NotificationItem

DEV_OUTBOX_KEY = "notifications:dev_outbox"
DEV_OUTBOX_SIZE = 500
# Well below the 60 s sending lease, so that a hung connection cannot outlive the claim.
SEND_TIMEOUT_SECONDS = 20

PROVIDERS = {"development": "notifications.channels.DevelopmentProvider"}


class ChannelAdapter(Protocol):
    def send(self, notification: NotificationItem) -> str:
        """Hand the message over; return the provider's message id."""


class EmailChannel:
    """Email through Django's configured email backend (SMTP, console, locmem in tests)."""

    def send(self, notification: NotificationItem) -> str:
        domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("<> ") or "localhost"
        message_id = make_msgid(domain=domain)
        message = EmailMessage(
            subject=notification.subject or "",
            body=notification.body,
            to=[notification.recipient],
            headers={"Message-ID": message_id, "X-Notification-ID": notification.notification_id},
            connection=get_connection(timeout=settings.EMAIL_TIMEOUT or SEND_TIMEOUT_SECONDS),
        )
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentChannelError(f"recipient refused by the mail server: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"email not sent: {type(exc).__name__}: {exc}") from exc
        return message_id


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=SEND_TIMEOUT_SECONDS,
        socket_connect_timeout=2,
    )


class DevelopmentProvider:
    """Sends nothing: records what it would send in a capped Redis list, so that tests, the
    worker and staff (the admin's development outbox) all see the same messages."""

    def send(self, notification: NotificationItem) -> str:
        message_id = f"dev-{ULID()}"
        entry = {
            "provider_message_id": message_id,
            "notification_id": notification.notification_id,
            "channel": notification.channel,
            "recipient": notification.recipient,
            "body": notification.body,
            "time": timezone.now().isoformat(),
        }
        try:
            pipe = _redis(settings.REDIS_URL).pipeline(transaction=True)
            pipe.lpush(DEV_OUTBOX_KEY, json.dumps(entry))
            pipe.ltrim(DEV_OUTBOX_KEY, 0, DEV_OUTBOX_SIZE - 1)
            pipe.execute()
        except redis.RedisError as exc:
            raise ChannelError(f"development outbox unavailable: {exc}") from exc
        return message_id


def development_outbox(*, limit: int = DEV_OUTBOX_SIZE) -> list[dict]:
    """What the development provider would have sent, newest first (full recipients:
    mask them before showing them to people)."""
    entries = _redis(settings.REDIS_URL).lrange(DEV_OUTBOX_KEY, 0, limit - 1)
    return [json.loads(entry) for entry in entries]


def provider_setting(channel: str) -> str:
    if channel == Channel.SMS:
        return settings.NOTIFICATIONS_SMS_PROVIDER
    if channel == Channel.PUSH:
        return settings.NOTIFICATIONS_PUSH_PROVIDER
    raise ImproperlyConfigured(f"no provider setting for channel {channel!r}")


def adapter_for(channel: str) -> ChannelAdapter:
    if channel == Channel.EMAIL:
        return EmailChannel()
    name = provider_setting(channel)
    try:
        provider_class = import_string(PROVIDERS.get(name, name))
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"{channel} provider {name!r} cannot be imported: {exc}"
        ) from exc
    return provider_class()
