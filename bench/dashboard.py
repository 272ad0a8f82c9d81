"""Dashboard benchmark: headless Chromium against a real `manage.py runtime`.

    uv run python bench/dashboard.py                      # embedded default (SQLite), ~2 min
    uv run python bench/dashboard.py --postgres           # PostgreSQL (a fresh `sched_bench_dashboard` db)
    uv run python bench/dashboard.py --screenshot docs/img/dashboard.png   # only the README screenshot

Measures (1) time to first paint of the dashboard with 500 jobs in the week (100 hourly, 400 daily:
about 19,600 calendar events), as first contentful paint and as the moment the calendar is drawn, and
(2) the delay from an API change (a job created through the API) to its event appearing in the open
page's DOM, p50 and p99 over 50 changes. Clocks: both ends read the same machine's wall clock.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.browser import OPS_TOKEN, Runtime, create_missed_job, launch, start_runtime, stop_runtime  # noqa: E402

PG_URL = "postgres://postgres@127.0.0.1:5432/sched_bench_dashboard"


def runtime_env(workdir: Path, postgres: bool, **extra: str) -> dict[str, str]:
    env = {**os.environ, "UA_OPS_TOKEN": OPS_TOKEN, "UA_OPS_AUTH": "on", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("DATABASE_URL", None)
    if postgres:
        env["DATABASE_URL"] = PG_URL
    else:
        env["UA_SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    return env


def fresh_postgres() -> None:
    import psycopg

    with psycopg.connect(PG_URL, dbname="postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS sched_bench_dashboard WITH (FORCE)")
        conn.execute("CREATE DATABASE sched_bench_dashboard")


def seed_week(runtime: Runtime) -> None:
    """500 jobs: 100 hourly and 400 daily (spread over the day)."""
    jobs = [{"command": f"hourly {i}", "every": "1h", "title": f"hourly-{i:03d}"} for i in range(100)]
    jobs += [
        {"command": f"daily {i}", "cron_expr": f"{i % 60} {i % 24} * * *", "title": f"daily-{i:03d}"}
        for i in range(400)
    ]
    with runtime.api() as api:
        for start in range(0, len(jobs), 250):  # bulk create (contract §2), a few requests
            response = api.post("/api/v1/cron/jobs", json=jobs[start : start + 250])
            if response.status_code != 201:
                raise SystemExit(f"bulk create failed: {response.text[:500]}")


def create(api: httpx.Client, job: dict) -> dict:
    response = api.post("/api/v1/cron/jobs", json=job)
    if response.status_code != 201:
        raise SystemExit(f"could not create {job}: {response.text}")
    return response.json()["job"]


def wait_for_feed(runtime: Runtime, minimum: int) -> None:
    """The projector catches up asynchronously: wait until the feed shows the seeded week."""
    deadline = time.monotonic() + 120
    with runtime.api() as api:
        while time.monotonic() < deadline:
            feed = api.get("/api/v1/ops/calendar/events", params={"view": "week"})
            if feed.status_code == 200 and len(feed.json()["events"]) >= minimum:
                return
            time.sleep(0.5)
    raise SystemExit("the calendar feed never showed the seeded jobs")


def first_paint(browser, runtime: Runtime, loads: int) -> list[tuple[float, float, int]]:
    """(first contentful paint ms, calendar drawn ms, events drawn) per fresh page load."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{runtime.base}/?ops_token={OPS_TOKEN}")  # log in once; the session cookie stays
    results = []
    for _ in range(loads):
        page.goto(f"{runtime.base}/", wait_until="commit")
        page.wait_for_function("performance.getEntriesByName('ops:calendar-drawn').length > 0", timeout=60000)
        fcp, drawn, count = page.evaluate(
            """() => [
              (performance.getEntriesByName('first-contentful-paint')[0] || {startTime: NaN}).startTime,
              performance.getEntriesByName('ops:calendar-drawn')[0].startTime,
              document.querySelectorAll('[data-event-id][data-status]').length]"""
        )
        results.append((fcp, drawn, count))
    context.close()
    return results


def change_to_dom(browser, runtime: Runtime, changes: int) -> list[float]:
    """Milliseconds from just before each `POST /cron/jobs` to the new job's first event in the DOM."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{runtime.base}/?ops_token={OPS_TOKEN}")
    page.wait_for_selector("[data-push-status='connected']", timeout=30000)
    page.wait_for_function("performance.getEntriesByName('ops:calendar-drawn').length > 0", timeout=60000)
    page.evaluate(
        """() => {
          window.__seen = {};
          new MutationObserver((records) => {
            for (const r of records) for (const n of r.addedNodes) {
              const id = n.dataset && n.dataset.eventId;
              if (!id) continue;
              const job = id.split('|')[1];
              if (!(job in window.__seen)) window.__seen[job] = Date.now();
            }
          }).observe(document.body, {childList: true, subtree: true});
        }"""
    )
    delays = []
    with runtime.api() as api:
        for i in range(changes):
            before = time.time() * 1000
            job = api.post("/api/v1/cron/jobs", json={"command": "x", "every": "6h", "title": f"change-{i}"})
            job_id = job.json()["job"]["job_id"]
            try:
                page.wait_for_function(f"'{job_id}' in window.__seen", timeout=60000)
            except PlaywrightTimeout:
                print(f"change {i}: not in the DOM within 60 s", flush=True)
                delays.append(60000.0)  # counted at the timeout, so the percentiles stay honest
                continue
            delays.append(page.evaluate(f"window.__seen['{job_id}']") - before)
            print(f"change {i}: {delays[-1]:.0f} ms", flush=True)
            time.sleep(0.2)  # changes arrive one at a time, as an operator's would
    context.close()
    return delays


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def populate(runtime: Runtime) -> None:
    """A small, realistic operator's week for the README screenshot: cron jobs in several zones, an
    always-running job, a failing job, missed one-shots in stasis (one approved), heartbeat sessions."""
    jobs = [
        {
            "command": "summarise the inbox",
            "cron_expr": "0 9 * * 1-5",
            "timezone": "Europe/Berlin",
            "title": "Inbox digest",
            "priority": "critical",
        },
        {"command": "sync CRM contacts", "every": "4h", "title": "CRM sync"},
        {"command": "nightly backup report", "cron_expr": "30 2 * * *", "title": "Backup report"},
        {
            "command": "weekly planning note",
            "cron_expr": "0 16 * * 5",
            "timezone": "America/New_York",
            "title": "Weekly plan",
        },
        {"command": "check the build", "every": "10m", "title": "Build watcher", "priority": "low"},
        {
            "command": "post metrics",
            "cron_expr": "15 */6 * * *",
            "title": "Metrics post",
            "target": {"type": "handler", "name": "fail"},
        },
        {
            "command": "standup reminder",
            "cron_expr": "45 9 * * 1-5",
            "timezone": "Europe/London",
            "title": "Standup reminder",
            "session_id": "agent-alpha",
        },
    ]
    for title in ("Invoice run", "Embeddings refresh", "Key rotation"):
        create_missed_job(runtime, title)
    with runtime.api() as api:
        created = [create(api, job) for job in jobs]
        for session, every in (("agent-alpha", "3h"), ("agent-beta", "6h"), ("support-bot", "12h")):
            api.put(
                f"/api/v1/heartbeat/sessions/{session}", json={"every": every, "active_hours": "07:00-22:00"}
            )
        api.post("/api/v1/system/event", json={"session_id": "agent-alpha", "text": "deploy finished"})
        api.post("/api/v1/heartbeat/wake", json={"session_id": "agent-alpha", "mode": "now"})
        api.post("/api/v1/heartbeat/sessions/support-bot/busy", json={"busy": True})
        api.post(f"/api/v1/cron/jobs/{created[5]['job_id']}/run")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(api.get("/api/v1/ops/stasis").json()["stasis_queue"]) < 3:
            time.sleep(0.5)
        first = api.get("/api/v1/ops/stasis").json()["stasis_queue"][-1]
        api.post(
            f"/api/v1/ops/calendar/events/{first['event_id']}/action", json={"action": "approve_backfill_run"}
        )
        time.sleep(3)


def screenshot(browser, runtime: Runtime, path: Path) -> None:
    populate(runtime)
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.goto(f"{runtime.base}/?ops_token={OPS_TOKEN}&tz=Europe%2FBerlin")
    page.wait_for_selector("[data-push-status='connected']", timeout=30000)
    page.wait_for_function("performance.getEntriesByName('ops:calendar-drawn').length > 0", timeout=60000)
    page.wait_for_timeout(1500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    context.close()
    print(f"screenshot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", action="store_true", help=f"use PostgreSQL ({PG_URL}), recreated")
    parser.add_argument("--loads", type=int, default=5, help="page loads for the first-paint figure")
    parser.add_argument("--changes", type=int, default=50, help="API changes for the delay figure")
    parser.add_argument("--screenshot", type=Path, help="only write the README screenshot to this path")
    args = parser.parse_args()
    if args.postgres:
        fresh_postgres()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        workdir = Path(tmp)
        runtime = start_runtime(workdir, runtime_env(workdir, args.postgres))
        browser = launch(playwright)
        try:
            if args.screenshot:
                screenshot(browser, runtime, args.screenshot)
                return
            report(browser, runtime, args)
        finally:
            browser.close()
            stop_runtime(runtime)


def report(browser, runtime: Runtime, args: argparse.Namespace) -> None:
    started = datetime.now(UTC)
    seed_week(runtime)
    wait_for_feed(runtime, 10_000)
    paints = first_paint(browser, runtime, args.loads)
    print(f"first paint (fcp ms, drawn ms, events): {paints}", flush=True)
    delays = change_to_dom(browser, runtime, args.changes)
    fcp = statistics.median(p[0] for p in paints)
    drawn = statistics.median(p[1] for p in paints)
    database = "PostgreSQL" if args.postgres else "SQLite (embedded default)"
    print(
        f"\n## Dashboard (issue 8): {database}, {started:%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}\n"
    )
    print("| measurement | value |\n|---|---|")
    print(f"| events drawn in the week view (500 jobs) | {paints[0][2]} |")
    print(f"| first contentful paint, median of {len(paints)} loads | {fcp:.0f} ms |")
    print(f"| calendar drawn (feed fetched and rendered), median of {len(paints)} loads | {drawn:.0f} ms |")
    print(f"| API change → DOM update, p50 over {len(delays)} changes | {percentile(delays, 50):.0f} ms |")
    print(f"| API change → DOM update, p99 over {len(delays)} changes | {percentile(delays, 99):.0f} ms |")
    print(f"| API change → DOM update, max | {max(delays):.0f} ms |")


if __name__ == "__main__":
    main()
