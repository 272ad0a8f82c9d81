"""How many push clients (SSE and WebSocket) this process serves right now, for `/metrics`."""

from __future__ import annotations

import threading

from scheduling import metrics

_count = 0
_lock = threading.Lock()


def connected() -> None:
    global _count
    with _lock:
        _count += 1
        current = _count
    metrics.set_gauge("push_clients", current)  # per process; /metrics sums the processes
    metrics.count("push_stream_connects")


def disconnected() -> None:
    global _count
    with _lock:
        _count -= 1
        current = _count
    metrics.set_gauge("push_clients", current)
    metrics.count("push_stream_disconnects")


def connected_clients() -> int:
    return _count
