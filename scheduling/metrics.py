"""Runtime metrics (contract §8): named counters and samples that any process records cheaply and that
survive restarts and sum across processes.

Every layer records here (`scheduling` is the lowest app, so the scheduler, the projector and the API can
all call it): `count("calendar_events_requests")`, `observe("due_lag_seconds", 0.004)`.
Implemented by the metrics work (issue 7): increments are buffered in memory and flushed in batches to a
table, never one row write per request.
"""

from __future__ import annotations


def count(name: str, n: int = 1) -> None:
    """Add `n` to the counter `name`."""


def observe(name: str, value: float) -> None:
    """Record one sample of `name` (for example `due_lag_seconds`): kept as samples/last/max/total."""
