"""Figures an app reads from its own stores when ``/metrics`` is scraped.

An app registers a collector (prometheus_client's protocol: ``collect()`` yields metric
families) in its ``AppConfig.ready()``; the exposition in ``ops.metrics`` reads every one.
The registry lives in the kernel so that an app adding figures depends on core, not on ops,
and ops names no domain app.
"""

from __future__ import annotations

from typing import Any

_collectors: list[Any] = []


def register_collector(collector: Any) -> None:
    """Add ``collector`` to the scrape; registering one of the same class again replaces it."""
    _collectors[:] = [c for c in _collectors if type(c) is not type(collector)]
    _collectors.append(collector)


def registered_collectors() -> tuple[Any, ...]:
    return tuple(_collectors)
