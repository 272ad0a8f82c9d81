"""Event log benchmark (issue 2): append throughput under concurrent writers, replay page latency.

    uv run python bench/event_log.py      # DATABASE_URL defaults to postgres://.../sched_bench

1. Writer threads (own connection each) append `cron_job_updated` events, one event per transaction (the
   realistic worst case), plus a batched row; afterwards the log must hold exactly seqs 1..N.
2. With >= 5,000 events in the log: GET /api/v1/ops/scheduling/events?since_seq=<random>&limit=500 against
   a real daphne process over loopback (keep-alive httpx client), next to the in-process cost of
   read_since + envelope + json.dumps as a baseline for the server's own overhead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

TOKEN = os.environ.setdefault("UA_OPS_TOKEN", f"bench-{secrets.token_hex(12)}")
URL = _setup.bootstrap()

import httpx  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.db.models import Count, Max, Min  # noqa: E402

from scheduling import event_log as el  # noqa: E402
from scheduling.models import LifecycleEvent  # noqa: E402

TARGET_RATE = 1500  # events/s with 4 writers, one event per transaction
TARGET_P50_MS = 20.0  # replay page over HTTP
VERDICT = {True: "MET", False: "MISSED"}
WARMUP_TXNS = 25  # per writer, before the clock starts
WARMUP_REQUESTS = 10
PAGE = 500


def percentiles(samples_s: list[float]) -> tuple[float, float, float]:
    """(p50, p99, max) in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p99, ms[-1]


def draft(writer: int, index: int) -> el.EventDraft:
    """What the cron_job_saved signal appends: the job id and a snapshot of the job (~600 bytes)."""
    job_id = f"job_{writer:02d}{index % 500:04d}"
    job = {"job_id": job_id, "user_id": f"owner-{writer}", "schedule_kind": "cron"}
    job |= {"cron_expr": "*/15 * * * *", "every_seconds": None, "run_at": None, "delete_after_run": False}
    job |= {"command": "Summarise the overnight alerts and post them to #ops", "timezone": "Europe/Berlin"}
    job |= {"enabled": True, "title": f"Alert digest {index}", "priority": "normal", "overlap": "skip"}
    job |= {"missed_policy": "run_once", "timeout_seconds": 300, "metadata": {"team": "ops"}}
    job |= {"updated_at": 1795000000 + index, "next_run_at_utc": "2026-11-22T10:15:00Z"}
    return el.EventDraft(
        event_type="cron_job_updated",
        source="cron",
        source_ref=job_id,
        owner_id=f"owner-{writer}",
        status="enabled",
        payload={"job_id": job_id, "job": job},
    )


# --- 1. append throughput ---------------------------------------------------------------------------------


def writer(no: int, txns: int, per_txn: int, start: threading.Barrier, latencies: list[float]) -> None:
    def one_txn(i: int) -> None:
        with transaction.atomic():
            if per_txn == 1:
                el.append_event(draft(no, i))
            else:
                el.append_events([draft(no, i * per_txn + k) for k in range(per_txn)])

    try:
        for i in range(WARMUP_TXNS):
            one_txn(i)
        start.wait(timeout=120)
        for i in range(WARMUP_TXNS, WARMUP_TXNS + txns):
            t = time.perf_counter()
            one_txn(i)
            latencies.append(time.perf_counter() - t)
    except BaseException:
        start.abort()  # release the main thread instead of leaving it at the barrier
        raise
    finally:
        connections.close_all()  # this thread's own connection


def gapless(expected: int) -> bool:
    agg = LifecycleEvent.objects.aggregate(n=Count("seq"), lo=Min("seq"), hi=Max("seq"))
    return agg["n"] == expected and agg["lo"] == 1 and agg["hi"] == expected


def append_config(writers: int, per_txn: int, total: int) -> tuple[list[str], float]:
    """One configuration on an empty log; returns its table row and events/s."""
    _setup.truncate_events()
    txns = total // (writers * per_txn)
    start = threading.Barrier(writers + 1)
    latencies: list[list[float]] = [[] for _ in range(writers)]
    threads = [
        threading.Thread(target=writer, args=(n, txns, per_txn, start, latencies[n]), daemon=True)
        for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    start.wait(timeout=120)
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    samples = [s for per_writer in latencies for s in per_writer]
    if len(samples) != writers * txns:
        raise RuntimeError("a writer thread failed (see the traceback above)")
    events = writers * txns * per_txn
    ok = gapless(writers * (WARMUP_TXNS + txns) * per_txn)
    p50, p99, _ = percentiles(samples)
    rate = events / elapsed
    label = f"{writers} writer{'s' if writers > 1 else ''}, {per_txn} ev/txn"
    stats = [f"{events:,}", f"{elapsed:.2f}", f"{rate:,.0f}", f"{p50:.2f}", f"{p99:.2f}"]
    return [label, *stats, "OK" if ok else "FAIL"], rate


# --- 2. replay page latency -------------------------------------------------------------------------------


def seed(n: int) -> int:
    _setup.truncate_events()
    for start in range(0, n, 500):
        with transaction.atomic():
            el.append_events([draft(i % 8, i) for i in range(start, min(n, start + 500))])
    return el.bounds().last_seq


def random_since(rng: random.Random) -> int:
    """A since_seq inside the retained log that still leaves a full page after it."""
    b = el.bounds()
    return rng.randint(b.oldest_seq - 1, max(b.oldest_seq - 1, b.last_seq - PAGE))


def in_process(requests: int, rng: random.Random) -> list[float]:
    samples = []
    for i in range(WARMUP_REQUESTS + requests):
        since = random_since(rng)
        t = time.perf_counter()
        json.dumps([el.envelope(e) for e in el.read_since(since, PAGE + 1)[:PAGE]])
        if i >= WARMUP_REQUESTS:
            samples.append(time.perf_counter() - t)
    return samples


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(client: httpx.Client, server: subprocess.Popen, log: tempfile._TemporaryFileWrapper) -> None:
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"daphne did not come up:\n{log.read().decode(errors='replace')}")
        try:
            if client.get("/api/v1/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def over_http(requests: int, rng: random.Random) -> tuple[list[float], float]:
    """Per-request seconds against a fresh daphne process, and the mean page size in KiB."""
    port = free_port()
    cmd = ["uv", "run", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    env = {**os.environ, "DATABASE_URL": URL, "UA_OPS_TOKEN": TOKEN}
    with tempfile.TemporaryFile() as log:
        # Own session, so stop() can end `uv run` and the daphne it starts as one process group.
        server = subprocess.Popen(
            cmd, cwd=_setup.REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
                wait_healthy(client, server, log)
                samples, sizes = [], []
                for i in range(WARMUP_REQUESTS + requests):
                    params = {"since_seq": random_since(rng), "limit": PAGE}
                    t = time.perf_counter()
                    response = client.get("/api/v1/ops/scheduling/events", params=params)
                    elapsed = time.perf_counter() - t
                    if response.status_code != 200 or len(response.json()["events"]) != PAGE:
                        raise RuntimeError(f"bad replay page: {response.status_code} {response.text[:300]}")
                    if i >= WARMUP_REQUESTS:
                        samples.append(elapsed)
                        sizes.append(len(response.content))
            return samples, statistics.mean(sizes) / 1024
        finally:
            stop(server)


def stop(server: subprocess.Popen) -> None:
    """SIGTERM the process group (uv run + daphne), SIGKILL it if still there after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


# --- main -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="timed events per writer configuration")
    parser.add_argument("--seed-events", type=int, default=5000, help="events in the log for replay")
    parser.add_argument("--requests", type=int, default=200, help="timed replay requests")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the settings log every request at INFO

    print(f"Event log benchmark ({URL.rsplit('@', 1)[-1]})\n")
    print(_setup.format_table(["machine", ""], [list(fact) for fact in _setup.machine_facts()]) + "\n")

    rows, rates = [], {}
    for writers, per_txn in ((1, 1), (4, 1), (4, 10)):
        row, rates[writers, per_txn] = append_config(writers, per_txn, args.events)
        rows.append(row)
    headers = ["append", "events", "seconds", "events/s", "txn p50 ms", "txn p99 ms", "seqs 1..N"]
    print(_setup.format_table(headers, rows) + "\n")

    rng = random.Random(2)
    last = seed(args.seed_events)
    base = percentiles(in_process(args.requests, rng))
    http_samples, kib = over_http(args.requests, rng)
    http = percentiles(http_samples)
    replay_rows = [
        ["read_since + envelope + json.dumps, in-process", str(args.requests), *(f"{v:.2f}" for v in base)],
        [f"GET .../events via daphne (~{kib:.0f} KiB/page)", str(args.requests), *(f"{v:.2f}" for v in http)],
    ]
    print(f"replay: {last:,} events in the log, random since_seq, full pages of limit={PAGE}")
    print(_setup.format_table(["replay page", "requests", "p50 ms", "p99 ms", "max ms"], replay_rows) + "\n")

    rate, p50 = rates[4, 1], http[0]
    print(f"target {TARGET_RATE:,} events/s, 4 writers x 1 ev/txn: {rate:,.0f}", VERDICT[rate >= TARGET_RATE])
    print(f"target replay page p50 <= {TARGET_P50_MS:.0f} ms: {p50:.2f} ms", VERDICT[p50 <= TARGET_P50_MS])
    if not all(row[-1] == "OK" for row in rows):
        sys.exit("FAIL: the event log has gaps or extra rows after a writer configuration")


if __name__ == "__main__":
    main()
