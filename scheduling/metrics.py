"""Runtime metrics (contract §8): named counters and samples that any process records cheaply and that
survive restarts and sum across processes.

Every layer records here (`scheduling` is the lowest app, so the scheduler, the projector and the API can
all call it): `count("calendar_events_requests")`, `observe("due_lag_seconds", 0.004)`,
`set_gauge("push_clients", 12)`.

How it stays cheap: a call only adds to this process's in-memory buffer (a dict under a lock). A
background thread merges the buffer into the `RuntimeMetric` table every `UA_METRICS_FLUSH_SECONDS`
(1.5 s) with one UPSERT per kind of value (`value = value + excluded.value` for sums, the larger for
maxima, the newer for lasts), and once more at exit. So a request never writes a metrics row, several
processes add into the same rows, and the totals survive restarts. The thread starts with the first
recorded value in a process (servers, schedulers, projectors, scripts alike); tests turn it off and call
`flush()` themselves. A process killed with SIGKILL loses at most its last unflushed interval.

Samples (`observe`) are kept as `<name>.samples`, `.total`, `.max` and `.last`; names listed in
`HISTOGRAMS` also keep cumulative bucket counts (`<name>.le.<bound>`) for the Prometheus histogram.
Gauges are per process: each writes `gauge.<name>.<process id>` and refreshes it while it lives, so
readers sum the fresh rows and a dead process's value ages out.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from scheduling import clock

logger = logging.getLogger(__name__)
# When this process started recording (the metrics document's started_at / uptime_seconds).
PROCESS_STARTED_AT = datetime.now(UTC)

DUE_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HISTOGRAMS: dict[str, tuple[float, ...]] = {"due_lag_seconds": DUE_LAG_BUCKETS}
GAUGE_PREFIX = "gauge."
# A process rewrites its gauges at least this often, and readers ignore gauges older than FRESH.
GAUGE_REFRESH_SECONDS = 10.0
GAUGE_FRESH_SECONDS = 30.0
_CHUNK = 300  # rows per statement: well under SQLite's bound-parameter limit


def bucket_name(name: str, bound: float) -> str:
    return f"{name}.le.{bound:g}"


class Recorder:
    """One process's buffer of not-yet-persisted metric values."""

    def __init__(self, process_id: str | None = None) -> None:
        self.process_id = process_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._lock = threading.Lock()
        self._sums: dict[str, float] = {}
        self._maxima: dict[str, float] = {}
        self._lasts: dict[str, tuple[float, datetime]] = {}
        self._gauges: dict[str, float] = {}
        self._gauges_dirty = False
        self._gauges_written = 0.0

    def count(self, name: str, n: float = 1) -> None:
        with self._lock:
            self._sums[name] = self._sums.get(name, 0) + n

    def count_many(self, counts: Mapping[str, float]) -> None:
        with self._lock:
            for name, n in counts.items():
                self._sums[name] = self._sums.get(name, 0) + n

    def observe(self, name: str, value: float) -> None:
        value, now = float(value), clock.now()
        with self._lock:
            for suffix, n in ((".samples", 1), (".total", value)):
                self._sums[name + suffix] = self._sums.get(name + suffix, 0) + n
            self._maxima[name + ".max"] = max(value, self._maxima.get(name + ".max", value))
            self._lasts[name + ".last"] = (value, now)
            for bound in HISTOGRAMS.get(name, ()):
                if value <= bound:  # cumulative buckets, as Prometheus wants them
                    key = bucket_name(name, bound)
                    self._sums[key] = self._sums.get(key, 0) + 1

    def set_gauge(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = float(value)
            self._gauges_dirty = True

    def pending(self) -> bool:
        with self._lock:
            return bool(self._sums or self._maxima or self._lasts or self._gauges_dirty)

    def discard(self) -> None:
        with self._lock:
            self._sums, self._maxima, self._lasts, self._gauges = {}, {}, {}, {}
            self._gauges_dirty = False

    def flush(self) -> int:
        """Merge the buffer into the table; returns the rows written. On failure the values go back
        into the buffer (nothing is lost while the database is away) and the error propagates."""
        with self._lock:
            sums, maxima, lasts = self._sums, self._maxima, self._lasts
            self._sums, self._maxima, self._lasts = {}, {}, {}
            refresh = self._gauges_dirty or time.monotonic() - self._gauges_written >= GAUGE_REFRESH_SECONDS
            gauges = dict(self._gauges) if refresh else {}
            self._gauges_dirty = False
        try:
            written = _write(sums, maxima, lasts, self._gauge_rows(gauges))
        except Exception:
            self._restore(sums, maxima, lasts, refresh)
            raise
        if gauges:
            self._gauges_written = time.monotonic()
        return written

    def retire(self) -> None:
        """Remove this process's gauges (and any left by processes dead for a day)."""
        from scheduling.models import RuntimeMetric

        with self._lock:
            names = [self._gauge_key(name) for name in self._gauges]
        RuntimeMetric.objects.filter(name__in=names).delete()
        stale = clock.now() - timedelta(days=1)
        RuntimeMetric.objects.filter(name__startswith=GAUGE_PREFIX, updated_at__lt=stale).delete()

    def _gauge_key(self, name: str) -> str:
        return f"{GAUGE_PREFIX}{name}.{self.process_id}"

    def _gauge_rows(self, gauges: dict[str, float]) -> dict[str, float]:
        return {self._gauge_key(name): value for name, value in gauges.items()}

    def _restore(self, sums: dict, maxima: dict, lasts: dict, gauges_dirty: bool) -> None:
        with self._lock:
            for name, n in sums.items():
                self._sums[name] = self._sums.get(name, 0) + n
            for name, value in maxima.items():
                self._maxima[name] = max(value, self._maxima.get(name, value))
            for name, (value, at) in lasts.items():
                if name not in self._lasts or self._lasts[name][1] <= at:
                    self._lasts[name] = (value, at)
            self._gauges_dirty = self._gauges_dirty or gauges_dirty


_MERGE = {
    "sum": "{t}.value + excluded.value",
    "max": "CASE WHEN excluded.value > {t}.value THEN excluded.value ELSE {t}.value END",
    "last": "CASE WHEN excluded.updated_at >= {t}.updated_at THEN excluded.value ELSE {t}.value END",
    "set": "excluded.value",
}


def _write(sums: dict, maxima: dict, lasts: dict, gauges: dict) -> int:
    """One UPSERT per kind of value, in one short transaction (PostgreSQL and SQLite share the syntax)."""
    from django.db import connection, transaction

    now = clock.now()
    batches = [
        ("sum", [(name, float(n), now) for name, n in sums.items() if n]),
        ("max", [(name, value, now) for name, value in maxima.items()]),
        ("last", [(name, value, at) for name, (value, at) in lasts.items()]),
        ("set", [(name, value, now) for name, value in gauges.items()]),
    ]
    if not any(rows for _, rows in batches):
        return 0
    from scheduling.models import RuntimeMetric

    table = connection.ops.quote_name(RuntimeMetric._meta.db_table)
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for kind, rows in batches:
            # Sorted names: concurrent flushes lock rows in one order, so they queue instead of deadlocking.
            rows.sort()
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                params: list = []
                for name, value, at in chunk:
                    params += [name, value, connection.ops.adapt_datetimefield_value(at)]
                merge = _MERGE[kind].format(t=table)
                cursor.execute(
                    f"INSERT INTO {table} (name, value, updated_at) VALUES "
                    + ", ".join(["(%s, %s, %s)"] * len(chunk))
                    + f" ON CONFLICT (name) DO UPDATE SET value = {merge}, updated_at = CASE WHEN"
                    f" excluded.updated_at > {table}.updated_at THEN excluded.updated_at"
                    f" ELSE {table}.updated_at END",
                    params,
                )
                written += len(chunk)
    return written


# --- the process-wide recorder and its flusher --------------------------------------------------------

_recorder = Recorder()
_flusher: threading.Thread | None = None
_flusher_stop = threading.Event()
_background = {"enabled": True, "checked": False}
_flusher_lock = threading.Lock()


def count(name: str, n: int = 1) -> None:
    """Add `n` to the counter `name`."""
    _recorder.count(name, n)
    _ensure_flusher()


def count_many(counts: dict[str, int]) -> None:
    """Add several counters at once (one lock round trip)."""
    _recorder.count_many(counts)
    _ensure_flusher()


def observe(name: str, value: float) -> None:
    """Record one sample of `name` (for example `due_lag_seconds`): kept as samples/last/max/total."""
    _recorder.observe(name, value)
    _ensure_flusher()


def set_gauge(name: str, value: float) -> None:
    """This process's current value of gauge `name` (e.g. `push_clients`); readers sum the processes."""
    _recorder.set_gauge(name, value)
    _ensure_flusher()


def record_projection_build(duration_ms: float, events: int, always_running: int, stasis: int) -> None:
    """One calendar feed build: the `projection` samples of the metrics endpoint."""
    observe("projection_duration_ms", duration_ms)
    count_many(
        {
            "projection_events_total": events,
            "projection_always_running_total": always_running,
            "projection_stasis_total": stasis,
        }
    )


def flush() -> int:
    """Persist this process's buffer now (tests; the metrics endpoints before they read)."""
    return _recorder.flush()


def discard_unflushed() -> None:
    _recorder.discard()


def set_background_flush(enabled: bool) -> None:
    """Allow or forbid the background flusher (tests forbid it and flush explicitly)."""
    _background["enabled"], _background["checked"] = enabled, False


def _ensure_flusher() -> None:
    if _background["checked"]:
        return
    with _flusher_lock:
        if _background["checked"]:
            return
        _background["checked"] = True
        from django.conf import settings

        interval = float(getattr(settings, "UA_METRICS_FLUSH_SECONDS", 1.5))
        if not _background["enabled"] or interval <= 0 or _flusher is not None:
            return
        _start_flusher(interval)


def _start_flusher(interval: float) -> None:
    global _flusher
    _flusher = threading.Thread(target=_flush_forever, args=(interval,), name="metrics-flush", daemon=True)
    _flusher.start()
    atexit.register(_flush_at_exit)


def _flush_forever(interval: float) -> None:
    from django.db import connection

    while not _flusher_stop.wait(interval):
        try:
            flush()
        except Exception:
            logger.warning("metrics flush failed; retrying", exc_info=True, extra={"action": "metrics_flush"})
        finally:
            # Give the connection back (the pool's, or close it): this thread wakes only every interval.
            connection.close()


def _flush_at_exit() -> None:
    _flusher_stop.set()
    try:
        flush()
        _recorder.retire()
    except Exception:  # the database may be why we exit; the buffered values are lost, nothing else
        logger.warning("final metrics flush failed", extra={"action": "metrics_flush"})
