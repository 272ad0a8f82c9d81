"""One statement that tells the scheduler when it next has anything to do.

An idle scheduler wakes on the safety poll, runs this single query (which on PostgreSQL also refreshes its
presence row in a data-modifying CTE), and goes back to sleep: that is the whole idle cost.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from scheduling import clock, presence
from scheduling.models import CronJob, CronRun, HeartbeatRun, HeartbeatSession, WorkerPresence


@dataclass
class WakePlan:
    next_job_at: datetime | None
    next_heartbeat_at: datetime | None
    next_lease_expiry: datetime | None
    queued_runs: bool

    def job_due(self, now: datetime) -> bool:
        return self.next_job_at is not None and self.next_job_at <= now

    def heartbeat_due(self, now: datetime) -> bool:
        return self.next_heartbeat_at is not None and self.next_heartbeat_at <= now

    def leases_expired(self, now: datetime) -> bool:
        return self.next_lease_expiry is not None and self.next_lease_expiry < now

    def next_at(self) -> datetime | None:
        moments = [m for m in (self.next_job_at, self.next_heartbeat_at, self.next_lease_expiry) if m]
        return min(moments, default=None)


def _tables() -> dict[str, str]:
    return {
        "job": CronJob._meta.db_table,
        "run": CronRun._meta.db_table,
        "session": HeartbeatSession._meta.db_table,
        "hb_run": HeartbeatRun._meta.db_table,
        "presence": WorkerPresence._meta.db_table,
    }


PLAN_COLUMNS = """
    (SELECT MIN(next_run_at) FROM {job}),
    (SELECT MIN(next_due_at) FROM {session} WHERE enabled),
    (SELECT MIN(lease_expires_at) FROM {run} WHERE status = 'running'),
    (SELECT MIN(lease_expires_at) FROM {hb_run} WHERE status = 'running'),
    EXISTS (SELECT 1 FROM {run} WHERE status = 'queued')
"""

PRESENCE_CTE = """
WITH presence AS (
    INSERT INTO {presence} (worker_id, kind, host, pid, started_at, last_seen_at)
    VALUES (%s, 'scheduler', %s, %s, %s, %s)
    ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
    RETURNING 1
)
SELECT {columns}, (SELECT COUNT(*) FROM presence)
"""


def read_wake_plan(worker_id: str, announce_started_at: datetime | None = None) -> WakePlan:
    """The plan; with `announce_started_at`, also refresh this worker's presence row."""
    tables = _tables()
    columns = PLAN_COLUMNS.format(**tables)
    with connection.cursor() as cursor:
        if announce_started_at is not None and connection.vendor == "postgresql":
            sql = PRESENCE_CTE.format(columns=columns, **tables)
            params: list[Any] = [
                worker_id,
                socket.gethostname(),
                os.getpid(),
                announce_started_at,
                clock.now(),
            ]
            cursor.execute(sql, params)
        else:
            if announce_started_at is not None:
                presence.announce("scheduler", worker_id, announce_started_at)
            cursor.execute(f"SELECT {columns}")
        row = cursor.fetchone()
    next_job, next_hb, cron_lease, hb_lease = (_aware(value) for value in row[:4])
    leases = [m for m in (cron_lease, hb_lease) if m]
    return WakePlan(next_job, next_hb, min(leases, default=None), bool(row[4]))


def _aware(value: object) -> datetime | None:
    """SQLite returns text from a raw MIN(); PostgreSQL returns aware datetimes."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
