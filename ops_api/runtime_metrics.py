"""The runtime metrics document (contract §8) and the Prometheus collector behind `GET /metrics`.

Both read the persisted state at request time: the metric rows every process flushes
(`scheduling.metrics_report`), the event log's bounds and the projection's position. Nothing here is
process-local except `started_at`/`uptime_seconds`, which describe the process answering.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from calendar_projection.models import current_state
from scheduling import clock, event_log, metrics
from scheduling.metrics_report import COUNTERS, EVENT_COUNT_PREFIX, RUN_OUTCOME_PREFIX, read_report
from scheduling.models import LifecycleEvent


@dataclass
class ProjectionLag:
    head_seq: int
    oldest_seq: int
    last_event_seq: int
    events: int
    seconds: float


def projection_lag() -> ProjectionLag:
    """How far the projection trails the log: in events (head - applied) and in seconds (how long the
    oldest event it has not applied has been waiting; 0 when it is caught up)."""
    bounds, state = event_log.bounds(), current_state()
    behind = max(0, bounds.last_seq - state.last_event_seq)
    seconds = 0.0
    if behind:
        first = (
            LifecycleEvent.objects.filter(seq__gt=state.last_event_seq)
            .order_by("seq")
            .values_list("occurred_at", flat=True)
            .first()
        )
        seconds = max(0.0, (clock.now() - first).total_seconds()) if first else 0.0
    return ProjectionLag(bounds.last_seq, bounds.oldest_seq, state.last_event_seq, behind, seconds)


def metrics_document() -> dict[str, Any]:
    """`{metrics: {started_at, uptime_seconds, counters, event_counts, projection, event_bus,
    projection_state}}` plus run outcomes and push clients."""
    metrics.flush()  # this process's own recent counts, so a reader sees what it just did
    report, lag, state = read_report(), projection_lag(), current_state()
    retained = lag.head_seq - lag.oldest_seq + 1 if lag.head_seq else 0
    return {
        "metrics": {
            "started_at": clock.iso(metrics.PROCESS_STARTED_AT),
            "uptime_seconds": round((datetime.now(UTC) - metrics.PROCESS_STARTED_AT).total_seconds(), 3),
            "counters": report.counters(),
            "event_counts": report.nested(EVENT_COUNT_PREFIX),
            "run_outcomes": report.nested(RUN_OUTCOME_PREFIX),
            "projection": report.projection(),
            "event_bus": {
                "event_bus_seq": lag.head_seq,
                "oldest_seq": lag.oldest_seq,
                "retained": retained,
                "max_retained": settings.UA_SCHED_EVENT_BUS_MAX,
            },
            "projection_state": {
                "version": state.version,
                "last_event_seq": state.last_event_seq,
                "last_event_at_utc": clock.iso(state.last_event_at),
                "lag_events": lag.events,
                "lag_seconds": lag.seconds,
            },
            "push_clients": int(report.gauges.get("push_clients", 0)),
        }
    }


class SchedulingCollector:
    """A Prometheus collector that reads the persisted state at scrape time (no process-local registry,
    so every server process answers a scrape with the same, summed numbers)."""

    def collect(self) -> Iterator[Metric]:
        metrics.flush()
        report, lag = read_report(), projection_lag()
        due = report.histogram("due_lag_seconds")
        buckets = [(floatToGoString(bound), value) for bound, value in due.buckets]
        yield HistogramMetricFamily(
            "scheduling_due_lag_seconds",
            "Start of a scheduled run minus its nominal time.",
            buckets=[*buckets, ("+Inf", due.count)],
            sum_value=due.total,
        )
        yield _gauge("scheduling_projection_lag_events", "Events in the log not yet projected.", lag.events)
        yield _gauge(
            "scheduling_projection_lag_seconds", "Age of the oldest event not yet projected.", lag.seconds
        )
        yield _gauge("scheduling_event_log_head_seq", "Newest event sequence number.", lag.head_seq)
        yield _gauge(
            "scheduling_event_log_oldest_seq", "Oldest retained event sequence number.", lag.oldest_seq
        )
        retained = lag.head_seq - lag.oldest_seq + 1 if lag.head_seq else 0
        yield _gauge("scheduling_event_log_retained_events", "Events kept for replay.", retained)
        yield _gauge(
            "scheduling_push_clients",
            "Connected push (SSE and WebSocket) clients, summed over server processes.",
            report.gauges.get("push_clients", 0),
        )
        yield from _counters(report)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counters(report: Any) -> Iterator[Metric]:
    outcomes = CounterMetricFamily(
        "scheduling_run_outcomes", "Finished runs by source and status.", labels=["source", "status"]
    )
    for source, statuses in sorted(report.nested(RUN_OUTCOME_PREFIX).items()):
        for status, value in sorted(statuses.items()):
            outcomes.add_metric([source, status], value)
    yield outcomes
    events = CounterMetricFamily(
        "scheduling_events", "Lifecycle events appended, by source and type.", labels=["source", "event_type"]
    )
    for source, types in sorted(report.nested(EVENT_COUNT_PREFIX).items()):
        for event_type, value in sorted(types.items()):
            events.add_metric([source, event_type], value)
    yield events
    for name in COUNTERS:
        family = name.removesuffix("_total")
        yield CounterMetricFamily(
            f"scheduling_{family}", f"The runtime counter {name}.", value=report.value(name)
        )
