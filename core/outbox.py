"""The one outbox: a side effect on another store, deferred until the change that causes it
has committed, and delivered at least once.

A Postgres change cannot commit atomically with a DynamoDB write. So the service that makes
the change writes an ``OutboxMessage`` in the same transaction (``outbox_add``): it commits
or rolls back with the change. After the commit a kick delivers it at once, and the relay
(``outbox_relay``, one Celery task run by beat every few seconds) delivers whatever a lost
kick or a failed delivery left: a message is never lost, and a rolled-back change leaves
none. Delivery is at least once (a relay that dies after the handler ran, before marking
the message, delivers it again), so every handler is idempotent by the message's key.

An app registers a handler per topic in its ``AppConfig.ready()``::

    outbox.register("payments.reversal", _reversal_deliver)           # one message a call
    outbox.register("audit", _events_deliver, batch=True)             # a list a call
    outbox.register("notifications.release", _release, inline=True)   # in the committing process

The kick: by default the commit enqueues one relay task (once per transaction, however many
messages it wrote). An ``inline`` topic is delivered in the committing process right after
the commit (as a caller may also do itself with ``outbox_deliver``), and the relay takes
such a message over only after ``INLINE_GRACE``.

A handler of one message returns normally when it is delivered and raises when it is not.
A batch handler takes a list and returns ``{message id: error}`` for those not delivered
(raising fails them all). A failed message counts ``attempts``, keeps ``last_error`` and is
retried after a backoff (``OUTBOX_RETRY_BASE_SECONDS`` doubling, at most ``MAX_BACKOFF``);
it stays pending until delivered, visible in the admin and in the backlog metric. Handlers
run in a savepoint of the relay's transaction, which holds the messages' row locks
(``SELECT ... FOR UPDATE SKIP LOCKED``): two relays at once share the work and never deliver
one message at the same time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, Exists, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from psycopg.types.json import Jsonb

from .bulk import copy_rows
from .models import OutboxMessage

logger = logging.getLogger(__name__)

# A message of an inline topic is delivered by its committing process; the relay takes it
# over when that has not happened within this time (the process died, the store was down).
INLINE_GRACE = dt.timedelta(seconds=60)
MAX_BACKOFF = dt.timedelta(minutes=15)
RELAY_LIMIT = 500
_ERROR_LENGTH = 2000

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Topic:
    name: str
    handler: Handler
    batch: bool = False
    inline: bool = False


_topics: dict[str, Topic] = {}


def register(topic: str, handler: Handler, *, batch: bool = False, inline: bool = False) -> None:
    """Deliver messages of ``topic`` with ``handler`` (see the module). Registering a topic
    again replaces its handler."""
    _topics[topic] = Topic(topic, handler, batch=batch, inline=inline)


def registered_topics() -> tuple[str, ...]:
    return tuple(sorted(_topics))


def _topic(name: str) -> Topic:
    try:
        return _topics[name]
    except KeyError:
        raise ValueError(f"no outbox handler registered for topic {name!r}") from None


# --- Writing -----------------------------------------------------------------------------

_INSERT_FIELDS = ("topic", "key", "ref", "payload", "created_at", "available_at", "attempts")


def outbox_add(
    topic: str,
    key: str,
    payload: Mapping[str, Any] | None = None,
    *,
    ref: str = "",
    using: str | None = None,
    available_at: dt.datetime | None = None,
) -> OutboxMessage | None:
    """Write a message in the current transaction of ``using`` and have it delivered after
    the commit. ``payload`` must be JSON-safe (Decimals and datetimes become strings, never
    floats). ``available_at`` delays it ("not before"). Returns the message, or ``None``
    when the topic already has ``key`` (adding the same one twice is a no-op)."""
    spec = _topic(topic)
    alias = using or DEFAULT_DB_ALIAS
    now = timezone.now()
    if available_at is None:
        available_at = now + INLINE_GRACE if spec.inline else now
    message = OutboxMessage(
        topic=topic,
        key=key,
        ref=ref[:200],
        payload=dict(payload or {}),
        created_at=now,
        available_at=available_at,
    )
    message.pk = _insert_unless_present(message, alias)
    if message.pk is None:
        return None
    message._state.adding, message._state.db = False, alias
    _kick(spec, message, alias)
    return message


def outbox_add_many(
    topic: str, messages: Iterable[tuple[str, Mapping[str, Any], str]], *, using=None
) -> int:
    """``outbox_add`` for many messages of a non-inline ``topic`` at once, each (key,
    payload, ref), with ``COPY`` (``core.bulk``): the keys must be new (ULIDs), a key
    already there raises ``IntegrityError``. One relay kick for them all. Returns how many
    were written (a bulk load: ``imports``' loans)."""
    spec = _topic(topic)
    if spec.inline:
        raise ValueError(f"outbox topic {topic!r} is inline: add its messages one by one")
    alias = using or DEFAULT_DB_ALIAS
    now = timezone.now()
    rows = [
        (topic, key, ref[:200], Jsonb(payload, dumps=_json_dumps), now, now, 0, "")
        for key, payload, ref in messages
    ]
    copy_rows(OutboxMessage, [*_INSERT_FIELDS, "last_error"], rows, using=alias)
    if rows:
        _kick(spec, OutboxMessage(topic=topic, key=rows[0][1]), alias)
    return len(rows)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder)


def _insert_unless_present(message: OutboxMessage, alias: str) -> int | None:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: one round trip, the new id or
    ``None`` for a key already there (the ORM's ``ignore_conflicts`` returns no id)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    opts = OutboxMessage._meta
    fields = [opts.get_field(name) for name in _INSERT_FIELDS]
    params = [f.get_db_prep_save(getattr(message, f.attname), connection) for f in fields]
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Identifiers come from the model, every value is a parameter.
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({columns}, {quote('last_error')}) "  # noqa: S608
        f"VALUES ({placeholders}, '') "
        f"ON CONFLICT ({quote('topic')}, {quote('key')}) DO NOTHING RETURNING {quote('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _kick(spec: Topic, message: OutboxMessage, alias: str) -> None:
    if not settings.OUTBOX_DELIVER_ON_COMMIT:
        return
    if spec.inline:
        # a lambda, not functools.partial: a failing robust hook is logged by __qualname__
        transaction.on_commit(
            lambda: _deliver_after_commit(spec, message, alias), using=alias, robust=True
        )
        return
    connection = transaction.get_connection(alias)
    if connection.in_atomic_block and any(
        callback is _enqueue_relay for _sids, callback, _robust in connection.run_on_commit
    ):
        return  # one relay task per transaction, however many messages it wrote
    transaction.on_commit(_enqueue_relay, using=alias, robust=True)


def _deliver_after_commit(spec: Topic, message: OutboxMessage, alias: str) -> None:
    """The inline topic's after-commit step. The handler gets the very object ``outbox_add``
    returned, so the caller may leave in-process state on it (notifications: the item it
    stored, which then shows the release)."""
    try:
        _deliver(spec, message.key, alias, written=message)
    except Exception:
        # The caller has committed: never let this reach it. The relay delivers it later.
        logger.warning(
            "outbox %s %s: not delivered after commit", spec.name, message.key, exc_info=True
        )


def _enqueue_relay() -> None:
    from .tasks import outbox_relay_task

    try:
        # No broker retries: the change is committed, the request must not wait on Redis.
        outbox_relay_task.apply_async(retry=False)
    except Exception:
        logger.warning("outbox relay not enqueued; beat will relay", exc_info=True)


# --- Delivering --------------------------------------------------------------------------


def outbox_deliver(
    topic: str, key: str, *, using: str | None = None, raise_errors: bool = False
) -> bool:
    """Deliver one pending message now, in this process, whatever its ``available_at``:
    the after-commit step of an inline topic, or a service that needs the side effect done
    before it answers. Returns whether it was delivered now (``False``: done already, not
    there, or being delivered by a relay). A failure is recorded as the relay records it;
    ``raise_errors`` then raises the handler's error."""
    delivered, error = _deliver(_topic(topic), key, using or DEFAULT_DB_ALIAS)
    if error is not None and raise_errors:
        raise error if isinstance(error, Exception) else RuntimeError(error)
    return delivered


def _deliver(
    spec: Topic, key: str, alias: str, *, written: OutboxMessage | None = None
) -> tuple[bool, Exception | str | None]:
    """Claim the pending message ``key`` (skipping it when a relay holds it) and deliver it:
    ``(delivered now, the error of a failed delivery)``."""
    with transaction.atomic(using=alias):
        message = (
            OutboxMessage.objects.using(alias)
            .select_for_update(skip_locked=True)
            .filter(topic=spec.name, key=key, done_at__isnull=True)
            .first()
        )
        if message is None:
            return False, None
        if written is not None and written.pk == message.pk:
            written.attempts = message.attempts
            message = written
        errors = _handle(spec, [message], alias)
        _settle([message], errors, alias)
    error = errors.get(message.pk)
    return error is None, error


def outbox_relay(
    *,
    limit: int = RELAY_LIMIT,
    topics: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> Counter[str]:
    """Deliver up to ``limit`` due messages (of ``topics``, default every topic), the
    longest waiting first; returns how many were delivered, by topic.

    The messages are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``: a concurrent relay
    takes others, never these, and waits for none. ``now`` is the moment that decides what
    is due (a test's "later")."""
    due_at = now or timezone.now()
    alias = DEFAULT_DB_ALIAS
    delivered: Counter[str] = Counter()
    with transaction.atomic(using=alias):
        pending = OutboxMessage.objects.using(alias).filter(
            done_at__isnull=True, available_at__lte=due_at
        )
        if topics is not None:
            pending = pending.filter(topic__in=list(topics))
        messages = list(
            pending.order_by("available_at", "id").select_for_update(skip_locked=True)[:limit]
        )
        by_topic: dict[str, list[OutboxMessage]] = defaultdict(list)
        for message in messages:
            by_topic[message.topic].append(message)
        errors: dict[int, Exception | str] = {}
        for name, batch in by_topic.items():
            spec = _topics.get(name)
            if spec is None:
                failed = dict.fromkeys((m.pk for m in batch), "no handler registered")
            else:
                failed = _handle(spec, batch, alias)
            errors.update(failed)
            delivered[name] += len(batch) - len(failed)
        _settle(messages, errors, alias)
    return delivered


def _handle(spec: Topic, messages: list[OutboxMessage], alias: str) -> dict[int, Exception | str]:
    """Run the topic's handler; returns the errors of the messages it did not deliver. Each
    call runs in a savepoint, so a failed one leaves no Postgres write behind."""
    if spec.batch:
        try:
            with transaction.atomic(using=alias):
                failed = spec.handler(messages) or {}
        except Exception as exc:
            _log_failure(spec.name, messages, exc)
            return dict.fromkeys((m.pk for m in messages), exc)
        return dict(failed)
    errors: dict[int, Exception | str] = {}
    for message in messages:
        try:
            with transaction.atomic(using=alias):
                spec.handler(message)
        except Exception as exc:
            _log_failure(spec.name, [message], exc)
            errors[message.pk] = exc
    return errors


def _log_failure(topic: str, messages: list[OutboxMessage], exc: Exception) -> None:
    keys = ", ".join(m.key for m in messages[:5]) + (", ..." if len(messages) > 5 else "")
    logger.warning("outbox %s: %s not delivered: %s", topic, keys, _error_text(exc))


def _settle(messages: list[OutboxMessage], errors: Mapping[int, Exception | str], alias) -> None:
    """Mark the delivered messages done; count an attempt on the others, keep the error and
    make them due again after the backoff (one UPDATE per attempt count and error)."""
    now = timezone.now()
    queryset = OutboxMessage.objects.using(alias)
    done = [m.pk for m in messages if m.pk not in errors]
    if done:
        queryset.filter(pk__in=done).update(done_at=now)
    failed: dict[tuple[int, str], list[int]] = defaultdict(list)
    for message in messages:
        if message.pk in errors:
            failed[(message.attempts + 1, _error_text(errors[message.pk]))].append(message.pk)
    for (attempts, error), pks in failed.items():
        queryset.filter(pk__in=pks).update(
            attempts=attempts, last_error=error, available_at=now + backoff(attempts)
        )


def _error_text(error: Exception | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:_ERROR_LENGTH]


def backoff(attempts: int) -> dt.timedelta:
    """The wait before the next delivery after ``attempts`` failed ones."""
    delay = dt.timedelta(seconds=settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def outbox_purge(*, older_than_days: int | None = None) -> int:
    """Delete messages delivered more than ``older_than_days`` ago (default
    ``settings.OUTBOX_RETENTION_DAYS``); a pending message is never deleted, however old.
    Returns how many were deleted."""
    if older_than_days is None:
        older_than_days = settings.OUTBOX_RETENTION_DAYS
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    deleted, _ = OutboxMessage.objects.filter(done_at__lt=cutoff).delete()
    return deleted


# --- Reading -----------------------------------------------------------------------------


def outbox_pending_keys(topic: str, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` have a message of ``topic`` not delivered yet."""
    keys = list(keys)
    if not keys:
        return set()
    return set(
        OutboxMessage.objects.filter(topic=topic, key__in=keys, done_at__isnull=True).values_list(
            "key", flat=True
        )
    )


def outbox_pending_exists(topic: str, key: Any) -> Exists:
    """An ``Exists`` for annotations: whether the row's message is still pending, e.g.
    ``queryset.annotate(sync_pending=outbox_pending_exists(TOPIC, OuterRef("txn_id")))``."""
    return Exists(OutboxMessage.objects.filter(topic=topic, key=key, done_at__isnull=True))


def outbox_backlog() -> dict[str, tuple[int, dt.datetime]]:
    """Pending messages by topic: ``{topic: (count, oldest created_at)}``."""
    rows = (
        OutboxMessage.objects.filter(done_at__isnull=True)
        .values("topic")
        .annotate(count=Count("id"), oldest=Min("created_at"))
        .order_by()
    )
    return {row["topic"]: (row["count"], row["oldest"]) for row in rows}


class OutboxBacklogCollector:
    """The outbox backlog for ``/metrics``, read from Postgres at each scrape, by topic
    (every registered topic, 0 when it has nothing pending): how many messages are pending
    and how long the oldest has waited. Registered in ``CoreConfig.ready()``."""

    def collect(self):
        try:
            backlog = outbox_backlog()
        except Exception:  # the database down must not break the scrape
            logger.warning("metrics: the outbox backlog could not be read", exc_info=True)
            return
        now = timezone.now()
        count = GaugeMetricFamily(
            "backoffice_outbox_pending_messages",
            "Outbox messages not delivered yet, by topic.",
            labels=["topic"],
        )
        age = GaugeMetricFamily(
            "backoffice_outbox_oldest_pending_age_seconds",
            "How long the oldest pending outbox message of a topic has waited (0: none).",
            labels=["topic"],
        )
        for topic in sorted(set(_topics) | set(backlog)):
            pending, oldest = backlog.get(topic, (0, None))
            count.add_metric([topic], pending)
            age.add_metric([topic], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        yield count
        yield age
