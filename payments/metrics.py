"""The posting queue's figures for ``/metrics``, read from DynamoDB at each scrape: every
instance reports the same values, so alert on ``max`` of them, not ``sum``. Registered in
``PaymentsConfig.ready()`` (``core.metrics``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily

from core.clock import iso, parse_iso

from .ddb_models import QueueItem, queue_live, queue_query
from .selectors import queue_counts
from .services import QueueStatus


class PostingQueueCollector:
    """The posting queue in DynamoDB: depth by status, age of the oldest due item, dead
    letters. ``backoffice_metrics_source_up`` is 0 (and the others absent) when DynamoDB
    cannot be read, so a store outage never breaks the scrape."""

    def collect(self):
        up = GaugeMetricFamily(
            "backoffice_metrics_source_up",
            "1 when /metrics could read the store's figures, else 0.",
            labels=["source"],
        )
        try:
            now = datetime.now(UTC)
            depth = GaugeMetricFamily(
                "backoffice_posting_queue_depth",
                "Posting queue items waiting or being posted, by status.",
                labels=["status"],
            )
            oldest_due = None
            counts = queue_counts()
            for status in (QueueStatus.READY, QueueStatus.LEASED):
                depth.add_metric([status.lower()], counts[status])
                # READY items are due from next_attempt_at, LEASED ones when the lease ends
                first = next(
                    iter(
                        queue_query(
                            status,
                            QueueItem.next_attempt_at <= iso(now),
                            filter_condition=queue_live(now),
                            limit=1,
                        )
                    ),
                    None,
                )
                if first is not None and (oldest_due is None or first.next_attempt_at < oldest_due):
                    oldest_due = first.next_attempt_at
            dead = counts[QueueStatus.DEAD]
        except Exception:  # any failure to read: report the source down, keep the scrape
            logging.getLogger(__name__).warning("metrics: the posting queue could not be read")
            up.add_metric(["dynamodb"], 0)
            yield up
            return
        age = 0.0
        if oldest_due is not None:
            due_at = parse_iso(oldest_due)
            age = max((now - due_at).total_seconds(), 0.0)
        up.add_metric(["dynamodb"], 1)
        yield up
        yield depth
        yield GaugeMetricFamily(
            "backoffice_posting_queue_oldest_due_age_seconds",
            "How long the oldest due posting queue item has waited past its due time (0: none).",
            value=age,
        )
        yield GaugeMetricFamily(
            "backoffice_posting_dead_letters",
            "Posting queue items given up after the last attempt, waiting for staff.",
            value=dead,
        )
