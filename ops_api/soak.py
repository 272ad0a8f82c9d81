"""The soak's checks (`manage.py soak`): one cycle probes health, metrics, the calendar week, event replay
and the SSE stream once, and checks invariants that must hold across cycles:

- no endpoint answers 5xx (or fails to answer);
- `seq` never goes backwards and replay pages are gapless (a 410 reset restarts the tail, honestly);
- the projection version never decreases;
- every run seen has at most one `started` event and at most one terminal event, started first.

Everything here talks HTTP only, so the soak measures what a client sees, against any deployment.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

STARTED = {"cron_run_started", "heartbeat_started"}
TERMINAL = {
    "cron_run_completed",
    "cron_run_failed",
    "cron_run_missed",
    "heartbeat_completed",
    "heartbeat_failed",
    "heartbeat_skipped",
    "heartbeat_missed",
}


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass
class Invariants:
    """State carried across cycles for the correctness checks."""

    last_seq: int | None = None
    projection_version: int | None = None
    started: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    terminal: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def see_events(self, events: list[dict[str, Any]]) -> list[str]:
        """Check a replay page against the tail so far; returns failure sentences."""
        failures = []
        for event in events:
            seq = event["seq"]
            if self.last_seq is not None and seq != self.last_seq + 1:
                failures.append(f"replay seq {seq} follows {self.last_seq}: not gapless and ascending")
            self.last_seq = seq
            failures += self._see_run(event)
        return failures

    def _see_run(self, event: dict[str, Any]) -> list[str]:
        run_id = (event.get("payload") or {}).get("run_id")
        kind = event["event_type"]
        if not run_id or (kind not in STARTED and kind not in TERMINAL):
            return []
        if kind in STARTED:
            self.started[run_id] += 1
            if self.started[run_id] > 1:
                return [f"run {run_id} has {self.started[run_id]} started events"]
            if self.terminal.get(run_id):
                return [f"run {run_id} started after its terminal event"]
            return []
        self.terminal[run_id] += 1
        if self.terminal[run_id] > 1:
            return [f"run {run_id} has {self.terminal[run_id]} terminal events"]
        return []

    def see_version(self, version: int | None, where: str) -> list[str]:
        if version is None:
            return []
        if self.projection_version is not None and version < self.projection_version:
            return [f"projection version went back from {self.projection_version} to {version} ({where})"]
        self.projection_version = version
        return []


@dataclass
class Probe:
    """One HTTP check's result."""

    name: str
    ok: bool
    status: int | None
    seconds: float
    detail: str = ""


class Soak:
    def __init__(self, client: httpx.Client, timeout: float, max_projection_lag: int = 1000) -> None:
        self.client = client
        self.timeout = timeout
        self.max_projection_lag = max_projection_lag
        self.lagging_cycles = 0
        self.invariants = Invariants()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.checks: dict[str, dict[str, int]] = defaultdict(lambda: {"pass": 0, "fail": 0})
        self.failures: list[str] = []
        self.cursor: int | None = None  # replay position: the last seq this soak has read

    def cycle(self) -> list[Probe]:
        probes = [
            self._get("health", "/api/v1/health"),
            self._get("metrics", "/api/v1/ops/metrics/scheduling-runtime"),
            self._get("prometheus", "/metrics"),
            self._calendar(),
            self._replay(),
            self._stream_once(),
        ]
        return probes

    def record(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks[name]["pass" if ok else "fail"] += 1
        if not ok:
            self.failures.append(f"{name}: {detail}")

    def _request(
        self, name: str, path: str, allowed: tuple[int, ...] = (), **params: Any
    ) -> tuple[Probe, httpx.Response | None]:
        """GET `path`; a 2xx (or a status in `allowed`) passes. Returns the response when it passed."""
        started = time.perf_counter()
        try:
            response = self.client.get(path, params=params or None, timeout=self.timeout)
        except httpx.HTTPError as error:
            probe = Probe(
                name, False, None, time.perf_counter() - started, f"{type(error).__name__}: {error}"
            )
            self.record(name, False, probe.detail)
            return probe, None
        seconds = time.perf_counter() - started
        self.latencies[name].append(seconds * 1000)
        ok = response.status_code < 400 or response.status_code in allowed
        probe = Probe(name, ok, response.status_code, seconds, "" if ok else response.text[:200])
        self.record(name, ok, f"HTTP {response.status_code} {probe.detail}")
        self.record("no_5xx", response.status_code < 500, f"{path} answered {response.status_code}")
        return probe, response if ok else None

    def _get(self, name: str, path: str) -> Probe:
        return self._request(name, path)[0]

    def _calendar(self) -> Probe:
        probe, response = self._request("calendar_week", "/api/v1/ops/calendar/events", view="week")
        if response is not None:
            self._check_version(response.json().get("version"), "calendar")
        return probe

    def _replay(self) -> Probe:
        """Tail the log from where the last cycle stopped, page by page (at most 20 pages a cycle)."""
        path = "/api/v1/ops/scheduling/events"
        if self.cursor is None:
            probe, response = self._request("replay", path, since_seq=0, limit=1)
            if response is None:
                return probe
            # Start the tail a little behind the head, so the first cycle checks some history too.
            self.cursor = max(response.json()["oldest_seq"] - 1, response.json()["event_bus_seq"] - 500, 0)
        for _ in range(20):
            probe, response = self._request("replay", path, allowed=(410,), since_seq=self.cursor, limit=1000)
            if response is None:
                return probe
            if response.status_code == 410:
                # Fell behind retention: an honest reset, not a gap. Restart the tail from the head.
                self.cursor, self.invariants.last_seq = None, None
                return probe
            page = response.json()
            failures = self.invariants.see_events(page["events"])
            self.record("seq_gapless_ascending", not failures, "; ".join(failures))
            self._check_version(page.get("projection_version"), "replay")
            self._check_projection_lag(page)
            self.cursor = page["next_since_seq"]
            if not page["has_more"]:
                break
        return probe

    def _stream_once(self) -> Probe:
        probe, response = self._request(
            "stream_once",
            "/api/v1/ops/scheduling/stream",
            since_seq=self.cursor or 0,
            once=1,
            heartbeat_seconds=2,
        )
        if response is not None:
            frames = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
            ok = bool(frames)
            for frame in frames:
                data = json.loads(frame)
                ok = ok and data.get("kind") in ("event", "heartbeat", "reset")
                self._check_version(data.get("projection_version"), "stream")
            self.record("stream_frame", ok, f"unexpected stream body: {response.text[:200]!r}")
        return probe

    def _check_projection_lag(self, page: dict[str, Any]) -> None:
        """The projector keeps up: a lag above `max_projection_lag` events for 3 cycles in a row fails
        (one slow cycle, a rebuild after a restart, may lag for a moment)."""
        lag = page.get("event_bus_seq", 0) - page.get("projection_last_event_seq", 0)
        self.lagging_cycles = self.lagging_cycles + 1 if lag > self.max_projection_lag else 0
        detail = f"projection lags {lag} events behind the log for {self.lagging_cycles} cycles"
        self.record("projection_keeps_up", self.lagging_cycles < 3, detail)

    def _check_version(self, version: int | None, where: str) -> None:
        failures = self.invariants.see_version(version, where)
        self.record("projection_version_monotonic", not failures, "; ".join(failures))

    def summary(self) -> dict[str, Any]:
        total_fail = sum(counts["fail"] for counts in self.checks.values())
        total = sum(counts["pass"] + counts["fail"] for counts in self.checks.values())
        latency = {
            name: {
                "count": len(samples),
                "p50_ms": round(percentile(samples, 0.50), 2),
                "p95_ms": round(percentile(samples, 0.95), 2),
                "p99_ms": round(percentile(samples, 0.99), 2),
                "mean_ms": round(statistics.fmean(samples), 2) if samples else 0.0,
            }
            for name, samples in sorted(self.latencies.items())
        }
        return {
            "all_checks_ok": total_fail == 0 and total > 0,
            "total_checks": total,
            "total_fail": total_fail,
            "checks": dict(self.checks),
            "latency": latency,
            "runs_seen": len(self.invariants.started.keys() | self.invariants.terminal.keys()),
            "last_seq": self.invariants.last_seq,
            "projection_version": self.invariants.projection_version,
            "failures": self.failures[-50:],
        }
