"""The one clock. Loops and services read time here; tests freeze or move it.

Pure scheduling functions never call this: they take `now` as an argument.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_frozen: datetime | None = None


def now() -> datetime:
    """Current time as an aware UTC datetime (the frozen one while a test holds the clock)."""
    frozen = _frozen
    return frozen if frozen is not None else datetime.now(UTC)


def now_under_lock(taken_before: datetime) -> datetime:
    """The time to stamp on the rows a transaction writes (started_at, finished_at), read after the
    transaction holds its locks and has read the rows it decides on.

    `taken_before` is the caller's reading from before the transaction. Stamping that could record
    history that did not happen: a claim whose reading predates another process's finish, but whose
    transaction commits after it, would start the next run of an overlap=skip job before the previous
    one ended. Read here instead, a finish committed before the claim's check is also stamped before the
    claim. On PostgreSQL the reading is the database's `clock_timestamp()`, one clock for every process
    and host; on SQLite (one host, and IMMEDIATE transactions hold the write lock from BEGIN) it is the
    local clock. A frozen clock keeps `taken_before`: tests drive time through the arguments they pass.
    """
    if _frozen is not None:
        return taken_before
    from django.db import connection  # the clock is imported by settings-free code; load Django late

    if connection.vendor != "postgresql":
        return datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0].astimezone(UTC)


def set_frozen(at: datetime | None) -> None:
    """Freeze the clock at `at` (aware), or release it with None."""
    global _frozen
    with _lock:
        _frozen = at.astimezone(UTC) if at is not None else None


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward; returns the new time."""
    global _frozen
    with _lock:
        if _frozen is None:
            raise RuntimeError("clock.advance() needs a frozen clock")
        _frozen = _frozen + delta
        return _frozen


@contextlib.contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Hold the clock at `at` for the duration of the block."""
    previous = _frozen
    set_frozen(at)
    try:
        yield
    finally:
        set_frozen(previous)


def epoch(moment: datetime | None) -> float | None:
    """Epoch seconds of an aware datetime (None stays None): the V1 wire format."""
    return moment.timestamp() if moment is not None else None


def iso(moment: datetime | None) -> str | None:
    """UTC ISO-8601 with a trailing Z (None stays None)."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # Naive then "Z": a third cheaper than replacing "+00:00" (the projector renders two per occurrence).
    return moment.replace(tzinfo=None).isoformat() + "Z"
