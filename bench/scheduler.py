"""Scheduler benchmark on PostgreSQL: due lag, a 500-job burst, change pickup through the API from another
process, and the idle cost of a scheduler holding 1,000 future jobs.

    uv run python bench/scheduler.py            # all scenarios (about 2.5 minutes)
    uv run python bench/scheduler.py --quick    # smaller counts, 20 s idle window

A real `manage.py run_scheduler` process does the scheduling; the bench process only creates jobs (through
the job service, or over HTTP against a real Daphne server for the pickup scenario) and reads the durable
run records afterwards. Lateness is `started_at - scheduled_at` as recorded by the scheduler.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

URL = _setup.bootstrap()

import httpx  # noqa: E402

from scheduling import clock  # noqa: E402
from scheduling.models import CronJob, CronRun, LifecycleEvent, Notification, StasisEntry  # noqa: E402
from scheduling.services import jobs as job_services  # noqa: E402

TOKEN = "bench-operator-token"
ROOT = _setup.REPO_ROOT


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def reset() -> None:
    _setup.truncate(CronRun, CronJob, LifecycleEvent, StasisEntry, Notification)


def start(*args: str, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "DATABASE_URL": URL, "UA_OPS_TOKEN": TOKEN, "UA_LOG_LEVEL": "WARNING", **env}
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=full_env)


def start_scheduler(**env: str) -> subprocess.Popen:
    return start_scheduler_with_stats(Path(tempfile.mkdtemp()) / "stats.json", **env)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(20)


def wait_runs(count: int, timeout: float) -> list[CronRun]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(CronRun.objects.exclude(started_at=None))
        if len(runs) >= count:
            return runs
        time.sleep(0.2)
    raise SystemExit(f"only {CronRun.objects.exclude(started_at=None).count()} of {count} runs started")


def one_shot(at: object, title: str) -> dict:
    return {"command": "bench", "run_at": clock.iso(at), "title": title}


def lags(runs: list[CronRun]) -> list[float]:
    return [(run.started_at - run.scheduled_at).total_seconds() for run in runs]


def due_lag(count: int) -> list[object]:
    reset()
    scheduler = start_scheduler()
    first = clock.now() + timedelta(seconds=2)
    for index in range(count):
        job_services.create_job(one_shot(first + timedelta(milliseconds=150 * index), f"due {index}"), None)
    values = lags(wait_runs(count, 60))
    stop(scheduler)
    return [
        "due lag, single jobs",
        count,
        ms(statistics.median(values)),
        ms(pct(values, 99)),
        ms(max(values)),
    ]


def burst(count: int) -> list[object]:
    reset()
    scheduler = start_scheduler()
    due = (clock.now() + timedelta(seconds=4)).replace(microsecond=0) + timedelta(seconds=1)
    for index in range(count):
        job_services.create_job(one_shot(due, f"burst {index}"), None)
    values = lags(wait_runs(count, 60))
    deadline = time.monotonic() + 60
    while CronRun.objects.filter(status="success").count() < count and time.monotonic() < deadline:
        time.sleep(0.2)
    durable = CronRun.objects.filter(status="success").count()
    stop(scheduler)
    label = f"burst of {count} due in one second ({durable} success rows)"
    return [label, count, ms(statistics.median(values)), ms(pct(values, 99)), ms(max(values))]


def change_pickup(samples: int) -> list[object]:
    """Jobs created over HTTP (Daphne, another process) due 1 s later; the scheduler only hears NOTIFY."""
    reset()
    port = 18765
    server = start("runtime", "--no-workers", "--port", str(port))
    scheduler = start_scheduler()
    base = f"http://127.0.0.1:{port}"
    values = []
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
            _wait_http(client)
            for index in range(samples):
                due = clock.now() + timedelta(seconds=1)
                job = client.post("/api/v1/cron/jobs", json=one_shot(due, f"pickup {index}")).json()["job"]
                while not CronRun.objects.filter(job_id=job["job_id"]).exclude(started_at=None).exists():
                    time.sleep(0.02)
                run = CronRun.objects.get(job_id=job["job_id"])
                values.append((run.started_at - run.scheduled_at).total_seconds())
    finally:
        stop(scheduler)
        stop(server)
    label = "change pickup (API in another process, due +1 s)"
    return [label, samples, ms(statistics.median(values)), ms(pct(values, 99)), ms(max(values))]


def _wait_http(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get("/api/v1/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


def idle_cost(jobs: int, window: float) -> list[list[object]]:
    """Statements: counted by the scheduler itself on its database connection (the LISTEN connection
    sends nothing while idle). Wakeups: voluntary context switches of all the scheduler's threads, which
    is what the operating system sees, whatever the loop thinks it does."""
    reset()
    later = clock.now() + timedelta(hours=1)
    for index in range(jobs):
        job_services.create_job(
            {"command": "idle", "cron_expr": f"{index % 60} * * * *", "title": str(index)}, None
        )
    CronJob.objects.update(next_run_at=later)
    stats = Path(tempfile.mkdtemp()) / "stats.json"
    scheduler = start_scheduler_with_stats(stats)
    time.sleep(5)  # let start-up settle
    # Read the thread counters after the first stats signal and before the second, so the signals that
    # fetch the statement counts fall outside the measured window.
    before_sql, before_wakes = _stats(scheduler, stats)
    time.sleep(0.5)
    before_sw = _switches(scheduler.pid)
    time.sleep(window)
    after_sw = _switches(scheduler.pid)
    after_sql, after_wakes = _stats(scheduler, stats)
    stop(scheduler)
    per_minute = 60.0 / window
    return [
        ["idle: SQL statements per minute", f"{(after_sql - before_sql) * per_minute:.1f}"],
        ["idle: scheduler loop iterations per minute", f"{(after_wakes - before_wakes) * per_minute:.1f}"],
        ["idle: process wakeups per minute (all threads)", f"{(after_sw - before_sw) * per_minute:.1f}"],
    ]


def start_scheduler_with_stats(stats: Path, **env: str) -> subprocess.Popen:
    process = start("run_scheduler", "--worker-id", "bench", "--stats-file", str(stats), **env)
    from scheduling.models import WorkerPresence

    deadline = time.monotonic() + 30
    while not WorkerPresence.objects.filter(worker_id="bench").exists():
        if time.monotonic() > deadline:
            raise SystemExit("scheduler did not start")
        time.sleep(0.1)
    return process


def _stats(process: subprocess.Popen, stats: Path) -> tuple[int, int]:
    stats.unlink(missing_ok=True)
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not stats.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    data = json.loads(stats.read_text())
    return data["sql_statements"], data["wakeups"]


def _switches(pid: int) -> int:
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def recovery(jobs: int, days: int) -> list[list[object]]:
    """Downtime: `jobs` minutely jobs whose schedules started `days` days ago. Measures how long the
    scheduler takes to record every miss (one pending stasis entry per job) and how job creation through
    the service fares meanwhile (the catch-up must not starve other writers)."""
    reset()
    for index in range(jobs):
        job_services.create_job({"command": "down", "cron_expr": "* * * * *", "title": f"down {index}"}, None)
    back = clock.now() - timedelta(days=days)
    CronJob.objects.update(anchor_at=back, next_run_at=back)
    scheduler = start_scheduler()
    started, writes = time.monotonic(), []
    while StasisEntry.objects.filter(status="pending").count() < jobs:
        t = time.perf_counter()
        job_services.create_job({"command": "meanwhile", "every": "1h"}, None)
        writes.append(time.perf_counter() - t)
        if time.monotonic() - started > 300:
            raise SystemExit("recovery did not finish in 5 minutes")
    elapsed = time.monotonic() - started
    missed = CronRun.objects.filter(status="missed").count()
    stop(scheduler)
    return [
        [
            f"recovery: {jobs} minutely jobs down {days} d -> {missed:,} missed rows, {jobs} stasis entries",
            f"{elapsed:.1f} s",
        ],
        [
            f"  job creation meanwhile (n={len(writes)}): p50 / p99 / max ms",
            f"{ms(statistics.median(writes))} / {ms(pct(writes, 99))} / {ms(max(writes))}",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    small = args.quick
    for label, value in _setup.machine_facts():
        print(f"{label:>16}: {value}")
    rows = [due_lag(20 if small else 100), burst(500), change_pickup(10 if small else 40)]
    print()
    print(_setup.format_table(["scenario", "n", "p50 ms", "p99 ms", "max ms"], rows))
    print()
    print(
        _setup.format_table(
            ["idle cost (1,000 jobs due in >= 1 h)", "value"], idle_cost(1000, 20 if small else 60)
        )
    )


if __name__ == "__main__":
    main()
