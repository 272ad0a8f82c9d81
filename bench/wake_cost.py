"""What one scheduler wake costs (SQL statements and milliseconds) on an empty database and with 100,000
rows in each scheduler table (cron runs, heartbeat runs, jobs, sessions, system events). The cost must
stay flat as history grows: every statement of a wake is an index probe (tests/integration/
test_wake_queries_use_indexes.py proves the plans; this measures them).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sched_bench uv run python bench/wake_cost.py
    uv run python bench/wake_cost.py --rows 100000 --wakes 300

Three kinds of wake, each run in this process on one connection, the way the scheduler's database
thread runs them:
- idle: the wake-plan statement alone (what a safety poll or a NOTIFY with nothing due costs);
- sweep: the plan plus every claim and lease-sweep step, all finding nothing due (the most an idle wake
  could ever do);
- one due job: the plan plus the claim that starts one due job (its run row, event and next due time).

Statements are counted the way the scheduler counts its own (`SchedulerStats.sql_statements`: BEGIN and
COMMIT not included); "server ms" is PostgreSQL's own execution time for the wake's statements.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.bootstrap()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from scheduling import clock  # noqa: E402
from scheduling.dispatch import Outcome  # noqa: E402
from scheduling.models import (  # noqa: E402
    CronJob,
    CronRun,
    HeartbeatRun,
    HeartbeatSession,
    LifecycleEvent,
    Notification,
    StasisEntry,
    SystemEvent,
    WakeRequest,
    WorkerPresence,
)
from scheduling.services import claims, heartbeat_runs, outcomes  # noqa: E402
from scheduling.services import jobs as job_services  # noqa: E402
from scheduling.wake_plan import read_wake_plan  # noqa: E402
from tests.history_rows import fill_history  # noqa: E402

WORKER = "bench-wake"


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def reset() -> None:
    _setup.truncate(
        CronRun, CronJob, HeartbeatRun, HeartbeatSession, SystemEvent, WakeRequest, LifecycleEvent,
        StasisEntry, Notification, WorkerPresence,
    )  # fmt: skip


def idle_wake() -> None:
    # Without the presence refresh, which rides along in the same statement once every 25 s.
    read_wake_plan(WORKER)


def sweep_wake() -> None:
    now = clock.now()
    read_wake_plan(WORKER)
    claims.claim_queued_runs(now, WORKER, 200)
    claims.claim_due_occurrences(now, WORKER, 250)
    heartbeat_runs.claim_due_heartbeats(now, WORKER, 30, 200)
    outcomes.expire_leases(now)
    heartbeat_runs.expire_heartbeat_leases(now)


def due_job_wake(job_id: str) -> Callable[[], None]:
    def wake() -> None:
        now = clock.now()
        read_wake_plan(WORKER)
        started, _ = claims.claim_due_occurrences(now, WORKER, 250)
        assert len(started) == 1, started

    def prepare() -> None:
        # Untimed: finish the last run (overlap=skip would skip the next) and make the job due now.
        running = list(
            CronRun.objects.filter(job_id=job_id, status="running").values_list("run_id", flat=True)
        )
        outcomes.record_outcomes([(run_id, Outcome("success")) for run_id in running], clock.now())
        CronJob.objects.filter(job_id=job_id).update(next_run_at=clock.now() - timedelta(milliseconds=1))

    wake.prepare = prepare  # type: ignore[attr-defined]
    return wake


def server_ms(wake: Callable[[], None], repeats: int = 30) -> str:
    """Milliseconds PostgreSQL spends executing one wake's statements (EXPLAIN ANALYZE's execution times,
    summed; median of `repeats`): the part that would grow with the tables, free of this process's CPU
    scheduling, which on a shared box dominates the wall-clock figures. Read-only wakes only."""
    getattr(wake, "prepare", lambda: None)()
    with CaptureQueriesContext(connection) as captured:
        wake()
    verbs = [(q["sql"].split()[0].upper(), q["sql"]) for q in captured.captured_queries]
    statements = [sql for verb, sql in verbs if verb not in ("BEGIN", "COMMIT")]
    if any(verb not in ("SELECT", "WITH", "BEGIN", "COMMIT") for verb, _ in verbs):
        return "-"
    totals = []
    with connection.cursor() as cursor:
        for _ in range(repeats):
            total = 0.0
            for sql in statements:
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
                total += cursor.fetchone()[0][0]["Execution Time"]
            totals.append(total)
    return f"{statistics.median(totals):.3f}"


def measure(wake: Callable[[], None], wakes: int, counter: StatementCounter) -> tuple[float, float, float]:
    """(statements per wake, p50 ms, p99 ms) over `wakes` timed wakes after 20 untimed ones."""
    prepare = getattr(wake, "prepare", lambda: None)
    timings, statements = [], 0
    for index in range(20 + wakes):
        prepare()
        before = counter.count
        started = time.perf_counter()
        wake()
        elapsed = time.perf_counter() - started
        if index >= 20:
            timings.append(elapsed)
            statements += counter.count - before
    timings.sort()
    p99 = timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]
    return statements / wakes, statistics.median(timings) * 1000, p99 * 1000


def scenario(rows: int, wakes: int, counter: StatementCounter) -> list[list[object]]:
    reset()
    if rows:
        started = time.perf_counter()
        fill_history(rows)
        print(f"filled {rows:,} rows per table in {time.perf_counter() - started:.1f} s", flush=True)
    job = job_services.create_job({"command": "bench", "every": "1h", "title": "due job"}, None)
    results = []
    for label, wake in (
        ("idle (plan only)", idle_wake),
        ("sweep (plan + every step, nothing due)", sweep_wake),
        ("one due job (plan + claim)", due_job_wake(job.job_id)),
    ):
        per_wake, p50, p99 = measure(wake, wakes, counter)
        results.append([label, f"{rows:,}", f"{per_wake:.1f}", f"{p50:.2f}", f"{p99:.2f}", server_ms(wake)])
    return results


def without_running_lease_index(wakes: int, counter: StatementCounter) -> list[object]:
    """The idle wake on the full tables as it was before issue 6: no partial index on the leases of
    running heartbeats, so MIN(lease_expires_at) reads the whole heartbeat-run table on every wake."""
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX hb_run_running_lease")
        cursor.execute(f"ANALYZE {HeartbeatRun._meta.db_table}")
    try:
        per_wake, p50, p99 = measure(idle_wake, wakes, counter)
        server = server_ms(idle_wake)
    finally:
        with connection.cursor() as cursor:
            table = HeartbeatRun._meta.db_table
            cursor.execute(
                f"CREATE INDEX hb_run_running_lease ON {table} (lease_expires_at) WHERE status = 'running'"
            )
    label = "idle, before issue 6 (no running-lease index)"
    return [label, "100,000", f"{per_wake:.1f}", f"{p50:.2f}", f"{p99:.2f}", server]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per table in the full scenario")
    parser.add_argument("--wakes", type=int, default=300, help="timed wakes per row of the table")
    args = parser.parse_args()
    for label, value in _setup.machine_facts():
        print(f"{label:>20}: {value}")
    counter = StatementCounter()
    connection.ensure_connection()
    connection.execute_wrappers.append(counter)
    rows = scenario(0, args.wakes, counter) + scenario(args.rows, args.wakes, counter)
    if args.rows:
        rows.append(without_running_lease_index(args.wakes, counter))
    reset()
    print()
    headers = ["wake", "rows per table", "statements", "p50 ms", "p99 ms", "server ms"]
    print(_setup.format_table(headers, rows))


if __name__ == "__main__":
    main()
