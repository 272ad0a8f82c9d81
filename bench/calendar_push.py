"""Calendar projection and push benchmark on PostgreSQL (issue 7). One command, prints one table:

    REDIS_URL=redis://127.0.0.1:6379/0 uv run python bench/calendar_push.py   # with the push rows
    uv run python bench/calendar_push.py            # 500 jobs (100 hourly, 400 daily), ~19,600 week events
    uv run python bench/calendar_push.py --quick    # fewer requests

Setup: 500 cron jobs created through the job service, and three and a half days of their past runs (with
their lifecycle events, in the shapes the scheduler writes) so a week view centred on now holds history and
future alike: 100 x 168 + 400 x 7 = 19,600 events. The projector drains the log in this process (its
throughput is events applied per second, batches of 500, materialisation included). Week views are then
fetched through HTTP from two real Daphne servers (`manage.py runtime --no-workers`), one per feed path.

With REDIS_URL set, the push rows (commit-to-WebSocket p99 with 200 clients over two servers via Redis,
memory per idle WebSocket client) come from running bench/push_latency.py in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

# Retention must not trim the synthetic history before the projector reads it (else it would rebuild).
os.environ.setdefault("UA_SCHED_EVENT_BUS_MAX", "1000000")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

URL = _setup.bootstrap()

import httpx  # noqa: E402
from django.db import transaction  # noqa: E402

from calendar_projection.models import (  # noqa: E402
    CalendarEntry,
    CalendarSource,
    CalendarStasisEntry,
    ProjectionState,
)
from calendar_projection.projector import project_next_batch  # noqa: E402
from scheduling import clock  # noqa: E402
from scheduling.event_log import append_events  # noqa: E402
from scheduling.lifecycle import status_event  # noqa: E402
from scheduling.models import CronJob, CronRun, LifecycleEvent, Notification, StasisEntry  # noqa: E402
from scheduling.occurrences import occurrences_of  # noqa: E402
from scheduling.services import jobs as job_services  # noqa: E402

TOKEN = "bench-operator-token"
ROOT = _setup.REPO_ROOT
HISTORY = timedelta(hours=84)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def reset() -> None:
    _setup.truncate(CronRun, CronJob, LifecycleEvent, StasisEntry, Notification, CalendarEntry,
                    CalendarSource, CalendarStasisEntry, ProjectionState)  # fmt: skip


def create_jobs() -> list[CronJob]:
    start = clock.now() - HISTORY
    jobs = []
    with clock.frozen(start):  # anchored in the past, so the history below is where the schedule fires
        for index in range(500):
            cron = f"{index % 60} * * * *" if index < 100 else f"{index % 60} {index % 24} * * *"
            body = {"command": f"bench job {index}", "cron_expr": cron, "title": f"job {index}"}
            jobs.append(job_services.create_job(body, None))
    return jobs


def write_history(jobs: list[CronJob]) -> int:
    """Past runs (success, a few errors) with their started and completed events, as claims write them."""
    now = clock.now()
    runs = []
    for job in jobs:
        for moment in occurrences_of(job, now - HISTORY, now - timedelta(seconds=1), 500):
            run = CronRun.for_job(job, reason="schedule", scheduled_at=moment, created_at=moment)
            run.started_at, run.finished_at = moment, moment + timedelta(seconds=2)
            runs.append(run)
    events = 0
    for start in range(0, len(runs), 2000):
        chunk = runs[start : start + 2000]
        drafts = []
        for index, run in enumerate(chunk):
            run.status = "running"
            drafts.append(status_event(run))
            run.status = "error" if index % 50 == 0 else "success"
            drafts.append(status_event(run))
        with transaction.atomic():
            CronRun.objects.bulk_create(chunk)
            append_events(drafts)
        events += len(drafts)
    return events


def drain() -> tuple[int, float]:
    applied, started = 0, time.perf_counter()
    while True:
        count = project_next_batch()
        if not count:
            return applied, time.perf_counter() - started
        applied += count


def start_server(port: int, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "DATABASE_URL": URL, "UA_OPS_TOKEN": TOKEN, "UA_LOG_LEVEL": "WARNING", **env}
    command = [sys.executable, str(ROOT / "manage.py"), "runtime", "--no-workers", "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env=full_env)


def week_latency(projection: bool, requests: int, **env: str) -> tuple[list[float], int, str]:
    from tests.processes import free_port

    port = free_port()
    server = start_server(port, UA_SCHED_EVENT_PROJECTION_ENABLED="1" if projection else "0", **env)
    params = {"start": str((clock.now() - HISTORY).timestamp()), "view": "week"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:  # fmt: skip
            _wait_http(client)
            body = client.get("/api/v1/ops/calendar/events", params=params).json()  # warm-up
            samples = []
            for _ in range(requests):
                began = time.perf_counter()
                response = client.get("/api/v1/ops/calendar/events", params=params)
                samples.append(time.perf_counter() - began)
                assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(15)
    return samples, len(body["events"]), body["path"]


def _wait_http(client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if client.get("/api/v1/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


def push_rows() -> dict[str, str]:
    """Run bench/push_latency.py (two Daphne servers, Redis, 200 WebSocket clients) in this run and keep
    its measured values by label; empty without REDIS_URL."""
    if not os.environ.get("REDIS_URL"):
        return {}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "push_latency.py")], cwd=ROOT, capture_output=True, text=True,
        # Its own database: this run holds the benchmark lock on ours (bench/_setup.py).
        timeout=600, env={**os.environ, "DATABASE_URL": URL.rsplit("/", 1)[0] + "/sched_bench_push"},
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"bench/push_latency.py failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    values = {}
    for line in done.stdout.splitlines():
        label, _, rest = line.partition("  ")
        if rest.strip():
            values[label.strip()] = rest.split()[0]
    return values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    reset()
    project_next_batch()  # first start: the (empty) build
    jobs = create_jobs()
    created, created_s = drain()
    history_events = write_history(jobs)
    applied, applied_s = drain()
    proj, proj_events, proj_path = week_latency(True, 30 if args.quick else 200)
    # The same requests with the rendered-window cache off: every request renders the week (what the first
    # read after each projection change costs).
    cold, cold_events, _ = week_latency(True, 10 if args.quick else 50, UA_CALENDAR_CACHE_BYTES="0")
    scan, scan_events, scan_path = week_latency(False, 3 if args.quick else 10)
    # Counts may differ by the few occurrences that passed between the two runs (no scheduler runs here,
    # and an occurrence whose time passed without a run is not shown on either path).
    assert (proj_path, scan_path) == ("projection", "scan")
    push = push_rows()
    speedup = statistics.median(scan) / statistics.median(proj)
    rows = [
        [f"week view p50, projection path ({proj_events:,} events, HTTP)", "<= 100 ms",
         f"{statistics.median(proj) * 1000:.1f} ms"],
        ["week view p99, projection path", "<= 250 ms", f"{pct(proj, 99) * 1000:.1f} ms"],
        [f"week view p50, projection path, cache off ({cold_events:,} events)", "-",
         f"{statistics.median(cold) * 1000:.1f} ms"],
        ["week view p99, projection path, cache off", "-", f"{pct(cold, 99) * 1000:.1f} ms"],
        [f"week view p50, scan path ({scan_events:,} events)", "-",
         f"{statistics.median(scan) * 1000:.1f} ms"],
        ["projection against scan (p50 ratio)", ">= 5x", f"{speedup:.1f}x"],
        [f"projector throughput, run events ({applied:,} events)", ">= 5,000 events/s",
         f"{applied / applied_s:,.0f} events/s"],
        [f"projector, job creations with materialisation ({created} events)", "-",
         f"{created / created_s:,.0f} events/s"],
        ["push latency p99, 200 WS clients, 2 servers via Redis (bench/push_latency.py)", "<= 100 ms",
         push.get("commit -> WebSocket receive p99 ms", "needs REDIS_URL")],
        ["memory per idle WebSocket client (bench/push_latency.py)", "report",
         f"{push['memory per idle WebSocket client KiB']} KiB" if push else "needs REDIS_URL"],
    ]  # fmt: skip
    assert history_events == applied
    print(_setup.format_table(["measurement", "target", "measured"], rows))
    print()
    print(_setup.format_table(["machine", ""], [list(fact) for fact in _setup.machine_facts()]))


if __name__ == "__main__":
    main()
