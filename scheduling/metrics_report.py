"""Reading the persisted metrics back (contract §8): the counters, event counts, samples, the due-lag
histogram and the summed per-process gauges, as the metrics endpoints show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from scheduling import clock
from scheduling.metrics import GAUGE_FRESH_SECONDS, GAUGE_PREFIX, HISTOGRAMS, bucket_name
from scheduling.models import RuntimeMetric

# Always present in `counters`, zero until first counted (contract §8).
COUNTERS = (
    "calendar_events_requests",
    "calendar_action_requests",
    "calendar_change_request_requests",
    "calendar_change_confirm_requests",
    "heartbeat_last_requests",
    "heartbeat_wake_requests",
    "event_emissions_total",
    "cron_events_total",
    "heartbeat_events_total",
    "push_replay_requests",
    "push_stream_connects",
    "push_stream_disconnects",
    "push_stream_event_payloads",
    "push_stream_keepalives",
)
EVENT_COUNT_PREFIX = "event_counts."
RUN_OUTCOME_PREFIX = "run_outcomes."


@dataclass
class Histogram:
    buckets: list[tuple[float, float]]  # (upper bound, cumulative count), +Inf excluded
    count: float
    total: float


@dataclass
class MetricsReport:
    values: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float:
        return self.values.get(name, 0.0)

    def counters(self) -> dict[str, int]:
        """The contract's counters plus any other plain counter recorded (ints)."""
        shown = {name: int(self.value(name)) for name in COUNTERS}
        for name, value in self.values.items():
            if "." not in name and name not in shown and not name.startswith("projection_"):
                shown[name] = int(value)
        return shown

    def nested(self, prefix: str) -> dict[str, dict[str, int]]:
        """`event_counts.cron.cron_job_created` → {"cron": {"cron_job_created": n}}."""
        out: dict[str, dict[str, int]] = {}
        for name, value in self.values.items():
            if name.startswith(prefix):
                outer, _, inner = name[len(prefix) :].partition(".")
                out.setdefault(outer, {})[inner] = int(value)
        return out

    def sample(self, name: str, unit: str) -> dict[str, float | int | None]:
        """`<name>.samples|total|max|last` as `<unit>_last|max|total|avg` plus the sample count."""
        samples, total = self.value(f"{name}.samples"), self.value(f"{name}.total")
        return {
            f"{unit}_last": self.values.get(f"{name}.last"),
            f"{unit}_max": self.values.get(f"{name}.max"),
            f"{unit}_total": total,
            f"{unit}_avg": total / samples if samples else None,
        }

    def projection(self) -> dict[str, float | int | None]:
        """The calendar feed build samples and the scheduler's due lag (the V1 `projection` block)."""
        return {
            "builds": int(self.value("projection_duration_ms.samples")),
            **self.sample("projection_duration_ms", "duration_ms"),
            "events_total": int(self.value("projection_events_total")),
            "always_running_total": int(self.value("projection_always_running_total")),
            "stasis_total": int(self.value("projection_stasis_total")),
            "due_lag_samples": int(self.value("due_lag_seconds.samples")),
            **self.sample("due_lag_seconds", "due_lag_seconds"),
        }

    def histogram(self, name: str) -> Histogram:
        bounds = HISTOGRAMS[name]
        return Histogram(
            buckets=[(bound, self.value(bucket_name(name, bound))) for bound in bounds],
            count=self.value(f"{name}.samples"),
            total=self.value(f"{name}.total"),
        )


def read_report() -> MetricsReport:
    """Every persisted value, with gauges summed over the processes that refreshed them lately."""
    fresh_after = clock.now() - timedelta(seconds=GAUGE_FRESH_SECONDS)
    report = MetricsReport()
    for name, value, updated_at in RuntimeMetric.objects.values_list("name", "value", "updated_at"):
        if not name.startswith(GAUGE_PREFIX):
            report.values[name] = value
        elif updated_at >= fresh_after:
            gauge = name[len(GAUGE_PREFIX) :].split(".", 1)[0]
            report.gauges[gauge] = report.gauges.get(gauge, 0.0) + value
    return report
