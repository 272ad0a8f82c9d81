"""Event log benchmark (issue 2): append throughput under concurrent writers, and replay page latency.

    uv run python bench/event_log.py            # DATABASE_URL defaults to a local `sched_bench` db

1. Writers append `cron_job_updated` events in short transactions (one event per transaction, the
   realistic worst case; plus a batched row for comparison). Each writer thread has its own connection.
   After each configuration the log must hold exactly seqs 1..N (gapless).
2. With the log seeded, GET /api/v1/ops/scheduling/events?since_seq=<random>&limit=500 against a real
   daphne process over loopback (keep-alive httpx client), next to the in-process cost of read_since +
   envelope + json.dumps as a baseline for the server's own overhead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

import _setup

TARGET_EVENTS_PER_S = 1500  # with 4 writers, one event per transaction
TARGET_REPLAY_P50_MS = 20.0
WARMUP_TXNS_PER_WRITER = 25
PAGE = 500


def percentiles(samples_s: list[float]) -> tuple[float, float, float]:
    """(p50, p99, max) in milliseconds."""
    ms = sorted(s * 1000 for s in samples_s)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p99, ms[-1]


def draft(writer: int, index: int):
    from scheduling.event_log import EventDraft

    job_id = f"job_{writer:02d}{index % 500:04d}"
    job = {
        "job_id": job_id,
        "user_id": f"owner-{writer}",
        "command": "Summarise the overnight alerts and post them to #ops",
        "schedule_kind": "cron",
        "cron_expr": "*/15 * * * *",
        "timezone": "Europe/Berlin",
        "enabled": True,
        "title": f"Alert digest {index}",
        "priority": "normal",
        "missed_policy": "run_once",
        "overlap": "skip",
        "timeout_seconds": 300,
        "metadata": {"team": "ops"},
        "updated_at": 1795000000 + index,
        "next_run_at_utc": "2026-11-22T10:15:00Z",
    }
    return EventDraft(
        event_type="cron_job_updated",
        source="cron",
        source_ref=job_id,
        owner_id=f"owner-{writer}",
        status="enabled",
        payload={"job_id": job_id, "job": job},
    )


# --- 1. append throughput ---------------------------------------------------------------------------------


def writer(no: int, txns: int, per_txn: int, start: threading.Barrier, latencies: list[float]) -> None:
    from django.db import connections, transaction

    from scheduling.event_log import append_event, append_events

    def one_txn(i: int) -> None:
        with transaction.atomic():
            if per_txn == 1:
                append_event(draft(no, i))
            else:
                append_events([draft(no, i * per_txn + k) for k in range(per_txn)])

    try:
        for i in range(WARMUP_TXNS_PER_WRITER):
            one_txn(i)
        start.wait(timeout=120)
        for i in range(WARMUP_TXNS_PER_WRITER, WARMUP_TXNS_PER_WRITER + txns):
            t = time.perf_counter()
            one_txn(i)
            latencies.append(time.perf_counter() - t)
    except BaseException:
        start.abort()
        raise
    finally:
        connections.close_all()  # this thread's connection(s)


def gapless(expected: int) -> bool:
    from django.db.models import Count, Max, Min

    from scheduling.models import LifecycleEvent

    agg = LifecycleEvent.objects.aggregate(n=Count("seq"), lo=Min("seq"), hi=Max("seq"))
    return agg["n"] == expected and agg["lo"] == 1 and agg["hi"] == expected


def append_config(writers: int, per_txn: int, total: int) -> tuple[list[object], float]:
    _setup.truncate_events()
    txns = total // (writers * per_txn)
    start = threading.Barrier(writers + 1)
    lat: list[list[float]] = [[] for _ in range(writers)]
    threads = [
        threading.Thread(target=writer, args=(n, txns, per_txn, start, lat[n]), daemon=True)
        for n in range(writers)
    ]
    for t in threads:
        t.start()
    start.wait(timeout=120)
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    samples = [s for per_writer in lat for s in per_writer]
    if len(samples) != writers * txns:
        raise RuntimeError("a writer thread failed (see traceback above)")
    events = writers * txns * per_txn
    ok = gapless(writers * (WARMUP_TXNS_PER_WRITER + txns) * per_txn)
    p50, p99, _ = percentiles(samples)
    rate = events / elapsed
    label = f"{writers} writer{'s' if writers > 1 else ''}, {per_txn} ev/txn"
    row = [
        label,
        f"{events:,}",
        f"{elapsed:.2f}",
        f"{rate:,.0f}",
        f"{p50:.2f}",
        f"{p99:.2f}",
        "OK" if ok else "FAIL",
    ]
    return row, rate


# --- 2. replay page latency -------------------------------------------------------------------------------


def seed(n: int) -> int:
    from django.db import transaction

    from scheduling.event_log import append_events, bounds

    _setup.truncate_events()
    for start in range(0, n, 500):
        with transaction.atomic():
            append_events([draft(i % 8, i) for i in range(start, min(n, start + 500))])
    return bounds().last_seq


def random_since(rng: random.Random) -> int:
    from scheduling.event_log import bounds

    b = bounds()
    return rng.randint(b.oldest_seq - 1, max(b.oldest_seq - 1, b.last_seq - PAGE))  # always a full page


def in_process(requests: int, rng: random.Random) -> list[float]:
    from scheduling.event_log import envelope, read_since

    samples = []
    for i in range(requests + 10):
        since = random_since(rng)
        t = time.perf_counter()
        events = read_since(since, PAGE + 1)
        json.dumps([envelope(e) for e in events[:PAGE]])
        if i >= 10:  # first ten are warm-up
            samples.append(time.perf_counter() - t)
    return samples


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def over_http(requests: int, rng: random.Random, token: str) -> tuple[list[float], float]:
    """Per-request seconds against a fresh daphne process, and the mean page size in KiB."""
    import httpx

    port = free_port()
    log = tempfile.TemporaryFile()
    cmd = ["uv", "run", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    server = subprocess.Popen(
        cmd,
        cwd=_setup.REPO_ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"daphne did not come up:\n{log.read().decode(errors='replace')}")
                try:
                    if client.get("/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            samples, sizes = [], []
            for i in range(requests + 10):
                since = random_since(rng)
                t = time.perf_counter()
                response = client.get(
                    "/api/v1/ops/scheduling/events", params={"since_seq": since, "limit": PAGE}
                )
                elapsed = time.perf_counter() - t
                if response.status_code != 200 or len(response.json()["events"]) != PAGE:
                    raise RuntimeError(f"bad replay page: {response.status_code} {response.text[:300]}")
                if i >= 10:  # first ten are warm-up
                    samples.append(elapsed)
                    sizes.append(len(response.content))
        return samples, statistics.mean(sizes) / 1024
    finally:
        stop(server)
        log.close()


def stop(server: subprocess.Popen) -> None:
    """Terminate daphne and its `uv run` parent: the whole process group we started for it."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


# --- main -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="timed events per writer configuration")
    parser.add_argument("--seed-events", type=int, default=5000, help="events in the log for replay")
    parser.add_argument("--requests", type=int, default=200, help="timed replay requests")
    args = parser.parse_args()

    token = os.environ.setdefault("UA_OPS_TOKEN", f"bench-{secrets.token_hex(12)}")
    url = _setup.bootstrap()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # settings log every request at INFO
    print(f"Event log benchmark ({url.rsplit('@', 1)[-1]})\n")
    print(_setup.format_table(["machine", ""], [list(f) for f in _setup.machine_facts()]), "\n")

    rows, rates = [], {}
    for writers, per_txn in ((1, 1), (4, 1), (4, 10)):
        row, rates[(writers, per_txn)] = append_config(writers, per_txn, args.events)
        rows.append(row)
    headers = ["append", "events", "seconds", "events/s", "txn p50 ms", "txn p99 ms", "seqs 1..N"]
    print(_setup.format_table(headers, rows), "\n")

    rng = random.Random(2)
    last = seed(args.seed_events)
    base = percentiles(in_process(args.requests, rng))
    http, kib = over_http(args.requests, rng, token)
    http_p = percentiles(http)
    replay_rows = [
        ["read_since + envelope + json (in-process)", args.requests, *(f"{v:.2f}" for v in base)],
        [
            f"GET events limit={PAGE} via daphne (~{kib:.0f} KiB)",
            args.requests,
            *(f"{v:.2f}" for v in http_p),
        ],
    ]
    print(f"replay: {last:,} events in the log, random since_seq, full pages of {PAGE}")
    print(_setup.format_table(["replay page", "requests", "p50 ms", "p99 ms", "max ms"], replay_rows), "\n")

    rate4 = rates[(4, 1)]
    print(
        f"target: >= {TARGET_EVENTS_PER_S:,} events/s with 4 writers, 1 ev/txn: {rate4:,.0f} "
        f"-> {'MET' if rate4 >= TARGET_EVENTS_PER_S else 'MISSED'}"
    )
    print(
        f"target: replay page p50 <= {TARGET_REPLAY_P50_MS:.0f} ms: {http_p[0]:.2f} ms "
        f"-> {'MET' if http_p[0] <= TARGET_REPLAY_P50_MS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
