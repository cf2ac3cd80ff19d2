"""The lease table of the stream processor, after the Kinesis Client Library's: one row per
shard of a stream, saying who reads it (``owner``, until ``lease_expires_at``), how far it
has been applied (``checkpoint``, the sequence number of the last record applied, written
in the same PostgreSQL transaction as what the records changed) and whether it is done
(``finished_at``: a closed shard read to its end; its children may then be read)."""

from __future__ import annotations

from django.db import models


class ShardLease(models.Model):
    source = models.CharField(max_length=40, help_text="The stream source (streams.sources).")
    stream_arn = models.CharField(max_length=300)
    shard_id = models.CharField(max_length=100)
    parent_shard_id = models.CharField(max_length=100, blank=True)
    owner = models.CharField(max_length=120, blank=True, help_text="The processor reading it.")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_counter = models.PositiveBigIntegerField(
        default=0, help_text="Raised at every take and renewal (the KCL's lease counter)."
    )
    checkpoint = models.CharField(
        max_length=64, blank=True, help_text="Sequence number of the last record applied."
    )
    records_applied = models.PositiveBigIntegerField(default=0)
    behind_seconds = models.FloatField(
        default=0, help_text="At the last read: how old its newest record was (0: at the tip)."
    )
    polled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="A closed shard read and applied to its end."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "stream_arn", "shard_id"]
        constraints = [
            models.UniqueConstraint(fields=["stream_arn", "shard_id"], name="shard_lease_once"),
        ]
        indexes = [
            models.Index(
                fields=["source", "stream_arn"],
                condition=models.Q(finished_at__isnull=True),
                name="shard_lease_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.shard_id}"
