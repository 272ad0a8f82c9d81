"""Worker presence: schedulers and projectors announce themselves so health can say whether they run."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from scheduling import clock
from scheduling.models import WorkerPresence

FRESH_FOR = timedelta(seconds=90)


def worker_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


def announce(kind: str, ident: str, started_at: datetime) -> None:
    now = clock.now()
    WorkerPresence.objects.update_or_create(
        worker_id=ident,
        defaults={
            "kind": kind,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen_at": now,
        },
    )


def retire(ident: str) -> None:
    """Remove this worker's row, and rows of workers silent for a day (killed without retiring)."""
    WorkerPresence.objects.filter(worker_id=ident).delete()
    WorkerPresence.objects.filter(last_seen_at__lt=clock.now() - timedelta(days=1)).delete()


def status_of(kind: str) -> dict:
    """{"status": "running"|"stopped", "workers": n, "last_seen_utc": ...} for one kind of worker."""
    cutoff = clock.now() - FRESH_FOR
    rows = WorkerPresence.objects.filter(kind=kind, last_seen_at__gte=cutoff)
    return summarise(list(rows.values_list("last_seen_at", flat=True)))


def summarise(fresh_sightings: list[datetime]) -> dict:
    """The status of one kind of worker from the last_seen_at of its fresh rows."""
    return {
        "status": "running" if fresh_sightings else "stopped",
        "workers": len(fresh_sightings),
        "last_seen_utc": clock.iso(max(fresh_sightings, default=None)),
    }
