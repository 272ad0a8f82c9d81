"""Push benchmark on PostgreSQL + Redis: commit-to-WebSocket-receive latency with 200 clients spread over
two server processes, and the memory each idle WebSocket client costs a server.

    REDIS_URL=redis://127.0.0.1:6379/0 uv run python bench/push_latency.py
    uv run python bench/push_latency.py --clients 200 --events 100 --interval 0.05

Two Daphne processes serve `config.asgi` (no scheduler or projector inside, as in production). Half the
clients connect to each. They run in two client processes (one per server), so one process parsing 200
frames per event does not stand in the measurement. The bench process commits jobs through the job
service, one at a time, and notes the monotonic time after each commit returned; a client notes the
monotonic time at which each frame arrived (CLOCK_MONOTONIC is shared by all processes of a machine).
Latency = receive time - commit time, over every (client, event) pair.

No projector runs, so the frames travel the log path: NOTIFY wakes each server's push hub, which reads
the new event from the log and fans it out (docs/events.md, "Push"). Memory: each server's RSS before the
clients connect and after they are connected and idle, divided by that server's clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

TOKEN = "bench-operator-token"
ROOT = _setup.REPO_ROOT


# --- client mode: one process holding many WebSocket clients of one server ---------------------------


async def hold_clients(url: str, count: int, events: int, ready: Path, out: Path) -> None:
    from websockets.asyncio.client import connect

    received: list[list[tuple[int, float]]] = [[] for _ in range(count)]

    async def client(index: int, started: asyncio.Event, connected: list[int]) -> None:
        async with connect(url, ping_interval=None, open_timeout=120, max_size=None) as websocket:
            connected.append(index)
            if len(connected) == count:
                started.set()
            mine = received[index]
            async for message in websocket:
                at = time.monotonic()
                # Parsing waits until the end; only the seq is picked out now, cheaply.
                if message.startswith('{"kind": "event"'):
                    seq = int(
                        message[message.index('"seq": ') + 7 : message.index(",", message.index('"seq": '))]
                    )
                    mine.append((seq, at))
                    if len(mine) >= events:
                        return

    started, connected = asyncio.Event(), []
    tasks = []
    for index in range(count):
        tasks.append(asyncio.create_task(client(index, started, connected)))
        if index % 20 == 19:
            await asyncio.sleep(0.05)  # connect in waves; a server accepts a few hundred per second
    await asyncio.wait_for(started.wait(), 300)
    ready.write_text("ready")
    await asyncio.wait(tasks, timeout=events * 2 + 60)
    out.write_text(json.dumps(received))


# --- the bench ----------------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_server(url: str, redis_url: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "UA_OPS_TOKEN": TOKEN,
        "UA_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=None,
        start_new_session=True,
    )


def wait_healthy(port: int) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not become healthy")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200, help="WebSocket clients over both servers")
    parser.add_argument("--events", type=int, default=100, help="commits measured")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between commits")
    parser.add_argument(
        "--hold", nargs=5, metavar=("URL", "COUNT", "EVENTS", "READY", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.hold:
        url, count, events, ready, out = args.hold
        asyncio.run(hold_clients(url, int(count), int(events), Path(ready), Path(out)))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    url = _setup.bootstrap()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    from scheduling.models import CronJob, CronRun, LifecycleEvent, Notification, StasisEntry
    from scheduling.services import jobs as job_services

    _setup.truncate(CronRun, CronJob, LifecycleEvent, StasisEntry, Notification)
    ports = [free_port(), free_port()]
    servers = [start_server(url, redis_url, port) for port in ports]
    holders: list[subprocess.Popen] = []
    work = Path(tempfile.mkdtemp(prefix="push-bench-"))
    try:
        for port in ports:
            wait_healthy(port)
        time.sleep(2)  # let the servers finish warming up before the baseline
        before = [rss_kib(server.pid) for server in servers]
        per_server = [args.clients // 2, args.clients - args.clients // 2]
        for index, (port, count) in enumerate(zip(ports, per_server, strict=True)):
            ws_url = f"ws://127.0.0.1:{port}/ws/ops/scheduling/?ops_token={TOKEN}&since_seq=0"
            holders.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--hold",
                        ws_url,
                        str(count),
                        str(args.events),
                        str(work / f"ready{index}"),
                        str(work / f"out{index}"),
                    ]
                )
            )
        deadline = time.monotonic() + 300
        while not all((work / f"ready{i}").exists() for i in range(2)):
            if time.monotonic() > deadline or any(h.poll() is not None for h in holders):
                raise SystemExit("clients did not connect")
            time.sleep(0.2)
        time.sleep(3)  # idle: connected clients, nothing to send
        after = [rss_kib(server.pid) for server in servers]

        committed: dict[int, float] = {}
        for seq in range(1, args.events + 1):
            job_services.create_job({"command": f"bench {seq}", "every": "1h"}, None)
            committed[seq] = time.monotonic()
            time.sleep(args.interval)
        for holder in holders:
            holder.wait(args.events * 2 + 120)
        latencies, missing = collect(work, committed, per_server, args.events)
    finally:
        for process in holders + servers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM) if process in servers else process.terminate()
                process.wait(20)
    report(args, latencies, missing, before, after, per_server)


def collect(work: Path, committed: dict[int, float], per_server: list[int], events: int):
    latencies: list[float] = []
    missing = 0
    for index in range(2):
        for client in json.loads((work / f"out{index}").read_text()):
            seen = {seq: at for seq, at in client}
            missing += sum(1 for seq in committed if seq not in seen)
            latencies.extend(seen[seq] - committed[seq] for seq in committed if seq in seen)
    return latencies, missing


def report(args, latencies, missing, before, after, per_server) -> None:
    print()
    for label, value in _setup.machine_facts():
        print(f"{label:22} {value}")
    print()
    rows = [
        ["clients (2 servers, Redis channel layer)", args.clients, ""],
        ["commits measured", args.events, ""],
        ["deliveries measured (clients x commits)", len(latencies), ""],
        ["deliveries missing", missing, "0"],
        ["commit -> WebSocket receive p50 ms", f"{pct(latencies, 50) * 1000:.1f}", ""],
        ["commit -> WebSocket receive p99 ms", f"{pct(latencies, 99) * 1000:.1f}", "<= 100"],
        ["commit -> WebSocket receive max ms", f"{max(latencies) * 1000:.1f}", ""],
    ]
    for index, (b, a, n) in enumerate(zip(before, after, per_server, strict=True)):
        rows.append([f"server {index + 1} RSS before / after {n} idle clients KiB", f"{b} / {a}", ""])
    per_client = sum(a - b for a, b in zip(after, before, strict=True)) / max(1, sum(per_server))
    rows.append(["memory per idle WebSocket client KiB", f"{per_client:.1f}", "report"])
    print(_setup.format_table(["measurement", "value", "target"], rows))


if __name__ == "__main__":
    main()
