"""A DynamoDB Streams processor after the Kinesis Client Library's conventions.

- **Leases**: a ``ShardLease`` row per shard. A processor takes leases that nobody holds,
  or whose holder has not renewed them for ``STREAMS_LEASE_SECONDS`` (``SELECT ... FOR
  UPDATE SKIP LOCKED``, then a conditional UPDATE), up to its fair share of the open
  shards (open shards / live processors, rounded up); it takes none from a live holder.
- **One reader a shard**: every read of a shard happens inside a PostgreSQL transaction
  that holds the lease row locked and finds this processor its owner, so a second
  processor can neither take the lease nor read the shard meanwhile.
- **Checkpoint**: in that same transaction the batch is applied (the source's ``apply``)
  and the sequence number of its last record is written; a processor killed at any point
  leaves both or neither, and the next holder resumes after the checkpoint.
- **Splits and closed shards**: a child shard is read only once its parent's lease is
  finished, i.e. the parent was read to its end (GetRecords gave no next iterator) and
  that end was applied. A parent that DynamoDB no longer lists (past the 24-hour
  retention) does not hold its children back.
- **Lag**: each read records how old its newest record was (0 when the read found none:
  the processor is at the tip); ``streams.metrics`` adds the time since that read.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.db.models.functions import Now
from django.utils import timezone

from dynamo.connection import boto3_client
from dynamo.tables import latest_stream_arn

from .models import ShardLease
from .sources import Source

logger = logging.getLogger(__name__)

POSITIONS = ("TRIM_HORIZON", "LATEST")


class LeaseLost(Exception):
    """Another processor holds the shard now."""


@dataclass
class _Held:
    lease_id: int
    shard_id: str
    checkpoint: str
    iterator: str | None = None


@dataclass
class PassReport:
    records: int = 0
    shards_read: int = 0
    finished: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def close_stale_connections() -> None:
    """Drop broken or too old database connections between batches, as Django does between
    requests (not inside a caller's transaction: a test's, or a caller applying more)."""
    if not connection.in_atomic_block:
        close_old_connections()


def normalize(record: dict) -> dict:
    """A record as GetRecords gives it, in the shape a Lambda event has it (its
    ``ApproximateCreationDateTime`` in epoch seconds), so one ``apply`` serves both."""
    image = record.get("dynamodb", {})
    moment = image.get("ApproximateCreationDateTime")
    if isinstance(moment, datetime.datetime):
        record = {
            **record,
            "dynamodb": {**image, "ApproximateCreationDateTime": moment.timestamp()},
        }
    return record


class StreamProcessor:
    """Reads one source's stream. ``run()`` loops until stopped; ``run_once()`` is one pass
    (list the shards when due, take leases, read one batch of each held shard)."""

    def __init__(
        self,
        source: Source,
        *,
        owner: str | None = None,
        apply: Callable[[list[dict]], object] | None = None,
        batch_size: int | None = None,
        lease_seconds: int | None = None,
        initial_position: str | None = None,
        on_read: Callable[[str, str], None] | None = None,
    ) -> None:
        self.source = source
        self.owner = owner or default_owner()
        self.apply = apply or source.apply
        self.batch_size = min(batch_size or settings.STREAMS_BATCH_SIZE, 1000)
        self.lease = datetime.timedelta(seconds=lease_seconds or settings.STREAMS_LEASE_SECONDS)
        self.initial_position = initial_position or settings.STREAMS_INITIAL_POSITION
        if self.initial_position not in POSITIONS:
            raise ValueError(f"initial position {self.initial_position!r}: one of {POSITIONS}")
        self.on_read = on_read  # (owner, shard_id) before each read: the tests watch it
        self.stream_arn: str | None = None
        self.held: dict[int, _Held] = {}
        self._synced_at = -math.inf
        self._client = boto3_client(service="dynamodbstreams")

    # --- the loop ---------------------------------------------------------------------

    def run(self, *, stop: threading.Event | None = None, until_idle: bool = False) -> int:
        """Pass after pass until ``stop`` is set (or, with ``until_idle``, until a pass
        reads nothing); waits ``STREAMS_POLL_SECONDS`` after a pass that read nothing and
        after a failed one. Returns the records applied. Leaves its leases on the way out."""
        stop = stop or threading.Event()
        total = 0
        try:
            while not stop.is_set():
                try:
                    report = self.run_once()
                except Exception:
                    logger.exception("stream %s: the pass failed; retrying", self.source.name)
                    close_stale_connections()
                    stop.wait(settings.STREAMS_POLL_SECONDS)
                    continue
                total += report.records
                if report.records == 0:
                    if until_idle:
                        break
                    stop.wait(settings.STREAMS_POLL_SECONDS)
        finally:
            self.release()
        return total

    def run_once(self) -> PassReport:
        close_stale_connections()
        if time.monotonic() - self._synced_at >= settings.STREAMS_SYNC_SECONDS:
            self.sync()
        report = PassReport()
        if self.stream_arn is None:
            return report
        self.take()
        for held in list(self.held.values()):
            try:
                read = self._read(held)
            except LeaseLost:
                self.held.pop(held.lease_id, None)
                report.lost.append(held.shard_id)
                logger.info("stream %s: lease of %s lost", self.source.name, held.shard_id)
                continue
            except Exception:
                held.iterator = None  # the batch rolled back: read again from the checkpoint
                raise
            report.shards_read += 1
            report.records += read
            if held.iterator is None and held.lease_id not in self.held:
                report.finished.append(held.shard_id)
        return report

    # --- shards and leases ----------------------------------------------------------------

    def sync(self) -> None:
        """List the stream's shards and give each a lease row. Leases of an earlier stream
        of the table (the stream turned off and on, the table made again) are finished."""
        arn = latest_stream_arn(self.source.model)
        if arn != self.stream_arn:
            self.held.clear()
        self.stream_arn = arn
        if arn is None:
            logger.warning("stream %s: the table has no stream", self.source.name)
            self._synced_at = time.monotonic()
            return
        shards, start = [], None
        while True:
            kwargs = {"StreamArn": arn} | ({"ExclusiveStartShardId": start} if start else {})
            described = self._client.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(described["Shards"])
            start = described.get("LastEvaluatedShardId")
            if not start:
                break
        leases_sync(source=self.source.name, stream_arn=arn, shards=shards)
        self._synced_at = time.monotonic()  # a failed listing is tried again at the next pass

    def take(self) -> list[str]:
        """Take free or expired leases up to this processor's share; returns their shards."""
        open_leases = ShardLease.objects.filter(
            source=self.source.name, stream_arn=self.stream_arn, finished_at__isnull=True
        )
        live_owners = set(
            open_leases.filter(lease_expires_at__gt=Now())
            .exclude(owner="")
            .values_list("owner", flat=True)
        )
        share = math.ceil(open_leases.count() / len(live_owners | {self.owner}))
        wanted = share - len(self.held)
        if wanted <= 0:
            return []
        parent_open = ShardLease.objects.filter(
            stream_arn=OuterRef("stream_arn"),
            shard_id=OuterRef("parent_shard_id"),
            finished_at__isnull=True,
        )
        with transaction.atomic():
            free = list(
                open_leases.select_for_update(skip_locked=True)
                .filter(Q(owner="") | Q(lease_expires_at__lt=Now()) | Q(owner=self.owner))
                .exclude(pk__in=list(self.held))
                .exclude(Exists(parent_open))
                .order_by("shard_id")
                .values_list("pk", "shard_id", "checkpoint", "owner")[:wanted]
            )
            ShardLease.objects.filter(pk__in=[pk for pk, *_ in free]).update(
                owner=self.owner,
                lease_expires_at=self._expiry(),
                lease_counter=F("lease_counter") + 1,
            )
        for pk, shard_id, checkpoint, holder in free:
            self.held[pk] = _Held(pk, shard_id, checkpoint)
            taken_over = f" over from {holder}" if holder and holder != self.owner else ""
            logger.info("stream %s: took %s%s", self.source.name, shard_id, taken_over)
        return [shard_id for _, shard_id, *_ in free]

    def release(self) -> None:
        """Give the held leases up (a clean stop): another processor may take them at once."""
        if self.held:
            ShardLease.objects.filter(pk__in=list(self.held), owner=self.owner).update(
                owner="", lease_expires_at=None
            )
            self.held.clear()

    def _expiry(self):
        return ExpressionWrapper(Now() + self.lease, output_field=DateTimeField())

    # --- reading -------------------------------------------------------------------------

    def _read(self, held: _Held) -> int:
        """One batch of one shard, applied and checkpointed in one transaction that holds
        the lease row; returns the records applied."""
        with transaction.atomic():
            lease = (
                ShardLease.objects.select_for_update()
                .filter(pk=held.lease_id, owner=self.owner, finished_at__isnull=True)
                .only("checkpoint")
                .first()
            )
            if lease is None:
                raise LeaseLost(held.shard_id)
            if lease.checkpoint != held.checkpoint:  # another holder moved it meanwhile
                held.checkpoint, held.iterator = lease.checkpoint, None
            if self.on_read is not None:
                self.on_read(self.owner, held.shard_id)
            records, next_iterator = self._get_records(held)
            changes: dict = {
                "polled_at": Now(),
                "lease_expires_at": self._expiry(),
                "lease_counter": F("lease_counter") + 1,
                "behind_seconds": 0.0,
            }
            if records:
                records = [normalize(record) for record in records]
                self.apply(records)
                if settings.STREAMS_CHECKPOINT_DELAY_SECONDS:  # the tests' window for a kill
                    logger.warning(
                        "stream %s: %d record(s) of %s applied, checkpoint in %s s",
                        self.source.name, len(records), held.shard_id,
                        settings.STREAMS_CHECKPOINT_DELAY_SECONDS,
                    )  # fmt: skip
                    time.sleep(settings.STREAMS_CHECKPOINT_DELAY_SECONDS)
                newest = records[-1]["dynamodb"].get("ApproximateCreationDateTime")
                if newest is not None:
                    changes["behind_seconds"] = max(timezone.now().timestamp() - newest, 0.0)
                changes["checkpoint"] = records[-1]["dynamodb"]["SequenceNumber"]
                changes["records_applied"] = F("records_applied") + len(records)
            if next_iterator is None:  # a closed shard read to its end
                changes |= {"finished_at": Now(), "owner": "", "lease_expires_at": None}
            ShardLease.objects.filter(pk=held.lease_id).update(**changes)
        held.checkpoint = changes.get("checkpoint", held.checkpoint)
        held.iterator = next_iterator
        if next_iterator is None:
            self.held.pop(held.lease_id, None)
            logger.info("stream %s: %s finished", self.source.name, held.shard_id)
        return len(records)

    def _get_records(self, held: _Held) -> tuple[list[dict], str | None]:
        for attempt in range(2):
            if held.iterator is None:
                held.iterator = self._iterator(held)
            try:
                answer = self._client.get_records(
                    ShardIterator=held.iterator, Limit=self.batch_size
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if attempt == 0 and code == "ExpiredIteratorException":
                    held.iterator = None
                    continue
                if attempt == 0 and code == "TrimmedDataAccessException":
                    # The checkpoint is older than the stream keeps (the processor was down
                    # for more than 24 hours): go on from the oldest record kept. The roll-up
                    # (every 15 minutes) and the daily build cover what was lost.
                    logger.error(
                        "stream %s: %s trimmed past the checkpoint %s; reading from the oldest",
                        self.source.name, held.shard_id, held.checkpoint,
                    )  # fmt: skip
                    held.checkpoint, held.iterator = "", self._iterator(held, "TRIM_HORIZON")
                    continue
                raise
            return answer.get("Records", []), answer.get("NextShardIterator")
        raise RuntimeError("unreachable")

    def _iterator(self, held: _Held, position: str | None = None) -> str:
        kwargs = {"StreamArn": self.stream_arn, "ShardId": held.shard_id}
        if held.checkpoint and position is None:
            kwargs |= {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": held.checkpoint,
            }
        else:
            kwargs["ShardIteratorType"] = position or self.initial_position
        return self._client.get_shard_iterator(**kwargs)["ShardIterator"]


def leases_sync(*, source: str, stream_arn: str, shards: list[dict]) -> int:
    """A lease row for each shard not yet known (``shards`` as DescribeStream lists them);
    leases of the source's other streams are finished. Returns the rows created."""
    known = set(ShardLease.objects.filter(stream_arn=stream_arn).values_list("shard_id", flat=True))
    rows = [
        ShardLease(
            source=source,
            stream_arn=stream_arn,
            shard_id=shard["ShardId"],
            parent_shard_id=shard.get("ParentShardId", ""),
        )
        for shard in shards
        if shard["ShardId"] not in known
    ]
    ShardLease.objects.bulk_create(rows, ignore_conflicts=True)
    replaced = (
        ShardLease.objects.filter(source=source, finished_at__isnull=True)
        .exclude(stream_arn=stream_arn)
        .update(finished_at=timezone.now(), owner="", lease_expires_at=None)
    )
    if replaced:
        logger.warning("stream %s: %d lease(s) of an earlier stream finished", source, replaced)
    return len(rows)
