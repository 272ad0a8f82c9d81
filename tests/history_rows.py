"""Years of history in seconds: bulk SQL (generate_series) that fills the scheduler's tables on PostgreSQL,
for the EXPLAIN test in tests/integration and the wake-cost benchmark in bench/. The rows look like a
long-lived install: almost every run finished, a few running with live leases, nothing due now."""

from __future__ import annotations

from django.db import connection

from scheduling.models import CronJob, CronRun, HeartbeatRun, HeartbeatSession, SystemEvent

# A handful of runs in flight (leases renewed a day ahead, so none lapses mid-measurement), the rest
# finished long ago.
RUNNING_EVERY = 20_000

_CRON_RUNS = """
INSERT INTO {table} (run_id, job_id, owner_id, session_id, channel, job_title, status, reason, scheduled_at,
    attempt, created_at, started_at, finished_at, error, output, lease_owner, lease_expires_at)
SELECT 'hist-run-' || g, 'hist-job-' || mod(g, 1000), 'owner-' || mod(g, 50), '', '', 'history',
    CASE WHEN mod(g, {running}) = 0 THEN 'running' WHEN mod(g, 7) = 0 THEN 'error' ELSE 'success' END,
    'schedule', now() - g * interval '1 minute', 1, now() - g * interval '1 minute',
    now() - g * interval '1 minute',
    CASE WHEN mod(g, {running}) = 0 THEN NULL ELSE now() - g * interval '1 minute' END,
    '', repeat('output ', 20), CASE WHEN mod(g, {running}) = 0 THEN 'elsewhere' ELSE '' END,
    CASE WHEN mod(g, {running}) = 0 THEN now() + interval '1 day' END
FROM generate_series(1, %s) AS g
"""

_HEARTBEAT_RUNS = """
INSERT INTO {table} (run_id, session_id, owner_id, channel, status, reason, scheduled_at, created_at,
    started_at, finished_at, ok_only, skip_count, output, error, lease_owner, lease_expires_at)
SELECT 'hist-hb-' || g, 'hist-session-' || mod(g, 1000), 'owner-' || mod(g, 50), '',
    CASE WHEN mod(g, {running}) = 0 THEN 'running' WHEN mod(g, 3) = 0 THEN 'skipped' ELSE 'success' END,
    CASE WHEN mod(g, 3) = 0 THEN 'busy' ELSE 'interval' END,
    now() - g * interval '1 minute', now() - g * interval '1 minute', now() - g * interval '1 minute',
    CASE WHEN mod(g, {running}) = 0 THEN NULL ELSE now() - g * interval '1 minute' END, true, 1,
    'HEARTBEAT_OK', '', CASE WHEN mod(g, {running}) = 0 THEN 'elsewhere' ELSE '' END,
    CASE WHEN mod(g, {running}) = 0 THEN now() + interval '1 day' END
FROM generate_series(1, %s) AS g
"""

_JOBS = """
INSERT INTO {table} (job_id, owner_id, command, schedule_kind, run_at, cron_expr, every_seconds, timezone,
    enabled, delete_after_run, session_id, channel, title, priority, wake_heartbeat, missed_policy, overlap,
    timeout_seconds, target, model, metadata, anchor_at, created_at, updated_at, next_run_at, last_run_at,
    parked_reason)
SELECT 'hist-job-' || g, 'owner-' || mod(g, 50), 'history', 'every', NULL, '', 3600, 'UTC',
    mod(g, 10) <> 0, false, '', '', 'history ' || g, 'normal', 'off', 'stasis', 'skip', 600, NULL, '', '{{}}',
    now(), now() - interval '30 days', now(),
    CASE WHEN mod(g, 10) <> 0 THEN now() + interval '1 hour' + g * interval '1 second' END, NULL, ''
FROM generate_series(1, %s) AS g
"""

_SESSIONS = """
INSERT INTO {table} (session_id, owner_id, every_seconds, active_hours, timezone, enabled, channel, target,
    delivery, visibility, busy, pending_wake, next_due_at, last_run_at, last_summary, last_alert_digest,
    last_alert_at, created_at, updated_at)
SELECT 'hist-session-' || g, 'owner-' || mod(g, 50), 1800, '', 'UTC', mod(g, 10) <> 0, '', NULL,
    '{{"mode": "last", "targets": []}}', '{{"show_ok": false}}', false, '',
    CASE WHEN mod(g, 10) <> 0 THEN now() + interval '1 hour' + g * interval '1 second' END,
    NULL, NULL, '', NULL, now() - interval '30 days', now()
FROM generate_series(1, %s) AS g
"""

_SYSTEM_EVENTS = """
INSERT INTO {table} (session_id, owner_id, text, created_at, delivered_at, delivered_run_id)
SELECT 'hist-session-' || mod(g, 1000), 'owner-' || mod(g, 50), 'deploy finished',
    now() - g * interval '1 minute', now() - g * interval '1 minute', 'hist-hb-' || g
FROM generate_series(1, %s) AS g
"""

_FILLS = [
    (CronRun, _CRON_RUNS),
    (HeartbeatRun, _HEARTBEAT_RUNS),
    (CronJob, _JOBS),
    (HeartbeatSession, _SESSIONS),
    (SystemEvent, _SYSTEM_EVENTS),
]


def fill_history(rows: int) -> list[str]:
    """Insert `rows` rows into each scheduler table (PostgreSQL only), ANALYZE them, return the tables.
    Raw SQL on purpose: a direct insert bypasses the services and their events, like a restored backup."""
    tables = []
    with connection.cursor() as cursor:
        for model, sql in _FILLS:
            table = model._meta.db_table
            cursor.execute(sql.format(table=table, running=RUNNING_EVERY), [rows])
            cursor.execute(f"ANALYZE {table}")
            tables.append(table)
    return tables
