"""One snapshot for reads that combine several queries (contract §2): a job's `running` and its
`last_run`, a list and its `has_more`, a session and its last run must describe the same moment, not two
moments either side of a scheduler's commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def snapshot_read() -> Iterator[None]:
    """Run the block's queries in one read-only snapshot.

    PostgreSQL: a READ ONLY, REPEATABLE READ transaction (READ COMMITTED takes a new snapshot per
    statement). SQLite: any transaction reads one snapshot; it is begun DEFERRED rather than with the
    configured IMMEDIATE so a read takes no write lock and never queues behind the scheduler. Inside an
    enclosing transaction the block simply joins it: that transaction already fixed the snapshot.
    """
    if connection.in_atomic_block:
        yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    with _deferred_begin(), transaction.atomic():
        yield


@contextmanager
def _deferred_begin() -> Iterator[None]:
    """SQLite: make the block's BEGIN a plain (deferred) one. The mode is read only when a transaction
    begins; inside the block nested atomics are savepoints, and the configured mode is back before this
    connection (one per thread) begins any other transaction."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    configured = connection.transaction_mode  # type: ignore[attr-defined]  # SQLite-only attribute
    connection.transaction_mode = None  # type: ignore[attr-defined]  # SQLite-only attribute
    try:
        yield
    finally:
        connection.transaction_mode = configured  # type: ignore[attr-defined]  # SQLite-only attribute
