"""Every write to notifications: queue, send (with claim, retry and backoff), dispatch, retry.

For other apps, from inside the service that makes the domain change::

    notification_queue(
        template_code="receipt", channel=Channel.SMS, recipient=customer.mobile,
        context={"customer_name": ..., "amount": Decimal("1234.56"), "loan_number": ...,
                 "paid_on": business_date, "receipt_number": ..., "mode": "UPI"},
        entity=notification_entity(loan_account),
    )

Delivery is at least once towards the provider and never twice from here: a worker claims a
notification with a conditional update (a lease), and only the holder of the current claim
records the outcome. A notification queued inside a Postgres transaction stays PENDING until
that transaction commits, so a rolled-back payment never sends its receipt: its release is
an outbox message (``core.outbox``, topic ``notifications.release``) written in the same
transaction, delivered in the committing process right after the commit, and by the
outbox's relay a minute later when that step fails or its process dies.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Mapping
from itertools import chain
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from pynamodb.exceptions import DoesNotExist, PutError, PynamoDBConnectionError, UpdateError
from ulid import ULID

from core.clock import iso, parse_iso
from core.models import OutboxMessage
from core.outbox import outbox_add
from dynamo.shards import in_parallel

from .channels import adapter_for
from .ddb_models import NotificationItem, status_keys, status_partitions
from .exceptions import (
    ChannelError,
    NotificationError,
    NotificationNotFound,
    NotificationNotRetryable,
    NotificationStoreUnavailable,
    PermanentChannelError,
)
from .models import RELEASE_TOPIC, Channel, NotificationStatus
from .recipients import recipient_clean, recipient_mask
from .rendering import template_render

logger = logging.getLogger(__name__)

Status = NotificationStatus
LEASE = dt.timedelta(seconds=60)
PENDING_TTL = dt.timedelta(days=1)
MAX_BACKOFF = dt.timedelta(hours=1)
_ERROR_LENGTH = 1000


def notification_entity(instance: models.Model) -> str:
    """The ``entity`` of a notification about a Postgres row: ``"accounts.user#5"``."""
    return f"{instance._meta.label_lower}#{instance.pk}"


def _condition_failed(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def _store_unavailable(exc: Exception) -> NotificationStoreUnavailable:
    return NotificationStoreUnavailable(f"DynamoDB: {exc}")


def _backoff(attempts: int) -> dt.timedelta:
    delay = dt.timedelta(seconds=settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    return min(delay, MAX_BACKOFF)


# --- Queue --------------------------------------------------------------------------------


def notification_queue(
    *,
    template_code: str,
    channel: str,
    recipient: str,
    context: Mapping[str, Any],
    entity: str = "",
    scheduled_at: dt.datetime | None = None,
) -> NotificationItem | None:
    """Render the (template_code, channel) template and store the notification.

    It is sent at ``scheduled_at`` (default: now), once the caller's Postgres transaction
    commits; a rollback leaves it PENDING, and it is never sent. Returns ``None`` when staff
    switched the template off. Money in ``context`` is a Decimal or a string, never a float.

    Raises ``TemplateNotFound``, ``TemplateRenderError``, ``InvalidRecipient`` or
    ``NotificationStoreUnavailable`` (all ``NotificationError``).
    """
    if scheduled_at is not None and timezone.is_naive(scheduled_at):
        raise NotificationError("scheduled_at must be timezone-aware")
    now = timezone.now()
    due = scheduled_at or now
    item = _notification_item(
        str(ULID()),
        Status.PENDING,
        template_code=template_code,
        channel=channel,
        recipient=recipient,
        context=context,
        entity=entity,
        due=due,
        # a rolled-back caller leaves the item PENDING: gone after a day, not the retention
        expires_at=now + PENDING_TTL,
    )
    if item is None:
        return None
    try:
        item.save(condition=NotificationItem.notification_id.does_not_exist())
    except PynamoDBConnectionError as exc:
        raise _store_unavailable(exc) from exc
    # In a savepoint: a caller that swallows our errors (a receipt must never stop a
    # posting) keeps a usable transaction.
    with transaction.atomic():
        message = outbox_add(
            RELEASE_TOPIC, item.notification_id, {"channel": channel, "due_at": iso(due)}
        )
        if message is not None:  # (a new ULID: always written)
            # the after-commit step releases this very object: the caller's item shows it
            message.notification = item
    return item


def _notification_item(
    notification_id: str,
    status: str,
    *,
    template_code: str,
    channel: str,
    recipient: str,
    context: Mapping[str, Any],
    entity: str,
    due: dt.datetime,
    expires_at: dt.datetime,
) -> NotificationItem | None:
    """The notification rendered and addressed, not stored; ``None`` when staff switched
    its template off."""
    if channel not in Channel.values:
        raise NotificationError(f"unknown channel {channel!r}")
    address = recipient_clean(channel=channel, recipient=recipient)
    rendered = template_render(code=template_code, channel=channel, context=context)
    if rendered is None:
        logger.info("notification %s/%s not queued: template switched off", template_code, channel)
        return None
    return NotificationItem(
        notification_id,
        channel=channel,
        template_code=template_code,
        recipient=address,
        recipient_masked=recipient_mask(channel=channel, recipient=address),
        subject=rendered.subject or None,
        body=rendered.body,
        entity=entity or None,
        **status_keys(notification_id, status, channel),
        scheduled_at=iso(due),
        attempts=0,
        created_at=timezone.now(),
        expires_at=expires_at,
    )


def notification_build(
    *,
    notification_id: str,
    template_code: str,
    channel: str,
    recipient: str,
    context: Mapping[str, Any],
    entity: str = "",
) -> NotificationItem | None:
    """A notification QUEUED and due now, rendered but not stored, for a caller that stores
    it in its own DynamoDB transaction (``notification_transact_put``) once its change has
    committed, and then calls ``notification_send_enqueue``. ``notification_id`` is the
    caller's (a ULID it owns, e.g. the payment's for its receipt), so that storing it again
    is a no-op. ``None`` when the template is switched off; raises what
    ``notification_queue`` raises."""
    now = timezone.now()
    return _notification_item(
        notification_id,
        Status.QUEUED,
        template_code=template_code,
        channel=channel,
        recipient=recipient,
        context=context,
        entity=entity,
        due=now,
        expires_at=now + dt.timedelta(days=settings.NOTIFICATIONS_RETENTION_DAYS),
    )


def notification_transact_put(tw, item: NotificationItem) -> None:
    """Add the put of ``item`` (from ``notification_build``) to the caller's
    ``TransactWrite``, on the condition that it is not stored yet."""
    tw.save(item, condition=NotificationItem.notification_id.does_not_exist())


def notification_release_deliver(message: OutboxMessage) -> None:
    """The outbox handler of ``notifications.release``, after the caller's commit: PENDING >
    QUEUED, and a send task now when it is due (the dispatcher sends the scheduled ones, and
    any whose task got lost). Raises ``NotificationStoreUnavailable`` (the outbox retries)."""
    item = getattr(message, "notification", None)
    if item is None:  # the relay: a message read back from the outbox
        item = NotificationItem(message.key, channel=message.payload["channel"])
    _release(item, parse_iso(message.payload["due_at"]))


def _release(item: NotificationItem, due: dt.datetime) -> bool:
    """PENDING -> QUEUED; False when it was released already (or expired meanwhile)."""
    now = timezone.now()
    try:
        item.update(
            actions=[
                *NotificationItem.status_set(item.notification_id, Status.QUEUED, item.channel),
                NotificationItem.expires_at.set(
                    now + dt.timedelta(days=settings.NOTIFICATIONS_RETENTION_DAYS)
                ),
            ],
            condition=(NotificationItem.status == Status.PENDING)
            & (NotificationItem.expires_at > now),
        )
    except UpdateError as exc:
        if _condition_failed(exc):
            return False
        raise _store_unavailable(exc) from exc
    if due <= now:
        notification_send_enqueue(item.notification_id)
    return True


def notification_send_enqueue(notification_id: str) -> None:
    """Send the QUEUED notification soon (the dispatcher sends it anyway if this is lost)."""
    from .tasks import notification_send_task

    try:
        notification_send_task.delay(notification_id)
    except Exception:
        # The notification is QUEUED in DynamoDB: the dispatcher sends it on its next round.
        logger.warning("notification %s: send task not enqueued", notification_id, exc_info=True)


def welcome_notification_queue(*, user: models.Model) -> list[NotificationItem]:
    """Queue the welcome EMAIL (if the user has an email) and SMS (if they have a mobile)."""
    context = {"name": user.get_full_name() or user.get_username(), "username": user.get_username()}
    entity = notification_entity(user)
    queued = []
    if user.email:
        queued.append(
            notification_queue(
                template_code="welcome",
                channel=Channel.EMAIL,
                recipient=user.email,
                context=context,
                entity=entity,
            )
        )
    if getattr(user, "mobile", ""):
        queued.append(
            notification_queue(
                template_code="welcome",
                channel=Channel.SMS,
                recipient=user.mobile,
                context=context,
                entity=entity,
            )
        )
    return [item for item in queued if item is not None]


# --- Send ---------------------------------------------------------------------------------


def notification_send(*, notification_id: str) -> NotificationItem | None:
    """Claim the notification, send it through its channel, record the outcome.

    Does nothing (returns ``None``) unless the notification is QUEUED and due, or SENDING
    under an expired lease (its worker was lost); so a redelivered task, a second worker or
    an expired notification sends nothing. A ``ChannelError`` puts it back in the queue with
    exponential backoff until ``NOTIFICATIONS_MAX_ATTEMPTS``, then it is FAILED.
    """
    now = timezone.now()
    try:
        item = NotificationItem.get(notification_id, consistent_read=True)
    except DoesNotExist:
        logger.info("notification %s does not exist", notification_id)
        return None
    except PynamoDBConnectionError as exc:
        raise _store_unavailable(exc) from exc
    if item.is_expired(now):
        return None
    max_attempts = settings.NOTIFICATIONS_MAX_ATTEMPTS
    if (
        item.status == Status.SENDING
        and item.lease_until is not None
        and item.lease_until < now
        and item.attempts >= max_attempts
    ):
        return _record_outcome(
            item,
            Status.FAILED,
            error=f"worker lost while sending; gave up after {item.attempts} attempts",
        )
    if not _claim(item, now):
        return None
    try:
        provider_message_id = adapter_for(item.channel).send(item)
    except PermanentChannelError as exc:
        return _record_outcome(item, Status.FAILED, error=str(exc))
    except Exception as exc:
        if not isinstance(exc, ChannelError):
            logger.exception("notification %s: unexpected error while sending", notification_id)
        error = str(exc) if isinstance(exc, ChannelError) else f"{type(exc).__name__}: {exc}"
        if item.attempts >= max_attempts:
            return _record_outcome(item, Status.FAILED, error=error)
        return _record_outcome(
            item, Status.QUEUED, error=error, retry_at=now + _backoff(item.attempts)
        )
    return _record_outcome(item, Status.SENT, provider_message_id=provider_message_id)


def _claim(item: NotificationItem, now: dt.datetime) -> bool:
    due = (NotificationItem.status == Status.QUEUED) & (NotificationItem.scheduled_at <= iso(now))
    abandoned = (NotificationItem.status == Status.SENDING) & (NotificationItem.lease_until < now)
    try:
        item.update(
            actions=[
                *NotificationItem.status_set(item.notification_id, Status.SENDING, item.channel),
                NotificationItem.lease_until.set(now + LEASE),
                NotificationItem.attempts.add(1),
            ],
            condition=(NotificationItem.expires_at > now) & (due | abandoned),
        )
    except UpdateError as exc:
        if _condition_failed(exc):
            return False
        raise _store_unavailable(exc) from exc
    return True


def _record_outcome(
    item: NotificationItem,
    status: str,
    *,
    error: str = "",
    provider_message_id: str = "",
    retry_at: dt.datetime | None = None,
) -> NotificationItem:
    """Move a SENDING notification on, only if this worker's claim still stands (the attempt
    number fences out a worker whose lease expired and was taken over)."""
    actions = [
        *NotificationItem.status_set(item.notification_id, status, item.channel),
        NotificationItem.lease_until.remove(),
    ]
    if error:
        actions.append(NotificationItem.last_error.set(error[:_ERROR_LENGTH]))
    if status == Status.SENT:
        actions += [
            NotificationItem.provider_message_id.set(provider_message_id),
            NotificationItem.sent_at.set(timezone.now()),
        ]
    if retry_at is not None:
        actions.append(NotificationItem.scheduled_at.set(iso(retry_at)))
    try:
        item.update(
            actions=actions,
            condition=(NotificationItem.status == Status.SENDING)
            & (NotificationItem.attempts == item.attempts),
        )
    except UpdateError as exc:
        if not _condition_failed(exc):
            raise _store_unavailable(exc) from exc
        logger.warning(
            "notification %s: claim lost before recording %s", item.notification_id, status
        )
        return item
    log = logger.warning if status == Status.FAILED else logger.info
    log(
        "notification %s (%s to %s) attempt %s: %s%s",
        item.notification_id,
        item.channel,
        item.recipient_masked,
        item.attempts,
        status,
        f" ({error})" if error else "",
    )
    return item


def notifications_dispatch_due(*, limit: int = 200) -> dict[str, int]:
    """Send what is due: per channel, up to ``limit`` QUEUED notifications whose
    ``scheduled_at`` has come, and SENDING ones whose worker was lost (expired lease).

    Queries every shard of the ``status_channel_shard`` index at once (never a scan).
    Returns counts by outcome (SENT, QUEUED for a retry, FAILED, and ``skipped`` when
    another worker had it).
    """
    now = timezone.now()
    live = NotificationItem.expires_at > now
    outcomes: Counter[str] = Counter()
    for channel in Channel.values:
        try:
            due = _query_shards(
                status_partitions(Status.QUEUED, channel),
                NotificationItem.scheduled_at <= iso(now),
                filter_condition=live,
                limit=limit,
            )
            abandoned = _query_shards(
                status_partitions(Status.SENDING, channel),
                filter_condition=live & (NotificationItem.lease_until < now),
                limit=limit,
            )
            for entry in chain(due, abandoned):
                result = notification_send(notification_id=entry.notification_id)
                outcomes[result.status if result is not None else "skipped"] += 1
        except PynamoDBConnectionError as exc:
            raise _store_unavailable(exc) from exc
    return dict(outcomes)


def _query_shards(keys: list[str], *args, limit: int, **kwargs) -> list[NotificationItem]:
    """Up to ``limit`` items of each shard (in parallel), soonest scheduled first."""
    per_shard = in_parallel(
        lambda key: list(
            NotificationItem.by_status_channel.query(key, *args, limit=limit, **kwargs)
        ),
        keys,
    )
    return sorted((i for items in per_shard for i in items), key=lambda i: i.scheduled_at)[:limit]


# --- Staff actions ------------------------------------------------------------------------


def notification_retry(*, notification_id: str, actor: Any = None) -> NotificationItem:
    """Put a FAILED notification back in the queue with a fresh set of attempts."""
    now = timezone.now()
    try:
        item = NotificationItem.get(notification_id, consistent_read=True)
    except DoesNotExist:
        raise NotificationNotFound(f"no notification {notification_id}") from None
    except PynamoDBConnectionError as exc:
        raise _store_unavailable(exc) from exc
    if item.is_expired(now):
        raise NotificationNotFound(f"no notification {notification_id}")
    if item.status != Status.FAILED:
        raise NotificationNotRetryable(
            f"only a failed notification can be retried, not {item.status}"
        )
    try:
        item.update(
            actions=[
                *NotificationItem.status_set(item.notification_id, Status.QUEUED, item.channel),
                NotificationItem.scheduled_at.set(iso(now)),
                NotificationItem.attempts.set(0),
            ],
            condition=(NotificationItem.status == Status.FAILED)
            & (NotificationItem.expires_at > now),
        )
    except UpdateError as exc:
        if _condition_failed(exc):
            raise NotificationNotRetryable("the notification changed meanwhile") from None
        raise _store_unavailable(exc) from exc
    logger.info(
        "notification %s re-queued by %s", notification_id, getattr(actor, "pk", None) or "system"
    )
    transaction.on_commit(lambda: notification_send_enqueue(notification_id), robust=True)
    return item
