"""The stream processor's lag for ``/metrics``, read from the lease table at each scrape
(every instance reports the same value: alert on ``max``). Registered in
``StreamsConfig.ready()`` (``core.metrics``)."""

from __future__ import annotations

import logging

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from .models import ShardLease

logger = logging.getLogger(__name__)


def stream_lag_seconds() -> dict[str, float]:
    """Per source, over its open shards: how old the newest record was at the last read
    (0 at the tip) plus the time since that read. An upper bound of how far the figures
    are behind the stream: it grows while no processor reads, even when nothing is
    written meanwhile, which is what an alert on a stopped processor needs."""
    now = timezone.now()
    lag: dict[str, float] = {}
    rows = ShardLease.objects.filter(finished_at__isnull=True).values_list(
        "source", "behind_seconds", "polled_at", "created_at"
    )
    for source, behind, polled_at, created_at in rows:
        since = max((now - (polled_at or created_at)).total_seconds(), 0.0)
        lag[source] = max(lag.get(source, 0.0), behind + since)
    return lag


class StreamLagCollector:
    """``backoffice_stream_lag_seconds{source}``; absent for a source without open shards
    (no processor has ever listed them) and when the lease table cannot be read (as the
    outbox's figures: PostgreSQL down has alerts of its own)."""

    def collect(self):
        try:
            lag = stream_lag_seconds()
        except Exception:  # the database down must not break the scrape
            logger.warning("metrics: the stream leases could not be read", exc_info=True)
            return
        family = GaugeMetricFamily(
            "backoffice_stream_lag_seconds",
            "How far the stream processor is behind its stream (seconds, upper bound).",
            labels=["source"],
        )
        for source, seconds in sorted(lag.items()):
            family.add_metric([source], seconds)
        yield family
