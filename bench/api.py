"""HTTP API benchmark (issue 10): the per-request floor, write latency, throughput under concurrent
clients and bulk create, with a bare ASGI app under Daphne as the baseline, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> uv run python bench/api.py [--rounds 3]

Starts (a) `daphne bench._bare_asgi:application` and then, one after the other, the runtimes named by
`--server-processes` (default `1,2,2api`): `manage.py runtime` (one process: server, scheduler and
projector threads), `runtime --server-processes 2` (two server processes, the scheduler in the parent and
the projector as a niced child) and `runtime --no-workers --server-processes 2` (the API alone, as when
the scheduler and projector run on other machines). Each starts from empty tables and is measured once its
start-up work has settled, over keep-alive connections with a raw-socket HTTP/1.1 client (a few
microseconds per request, so the client is not what is measured); the 8-client row runs its clients as
separate processes. Every round measures every row; the last table gives the median of the rounds. Before
each row the script waits until the projector has caught up with the log (so that projecting one row's
jobs is not charged to the next row); the CPU column (the runtime and its child processes) still includes
the projector's work for the row's own writes (a new hourly job materialises 360 future occurrences). The
benchmark empties the job, run, event and calendar tables of the database: never point it at data you
want to keep.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import REPO_ROOT, bootstrap, format_table, machine_facts, truncate  # noqa: E402

TOKEN = "bench-api-operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# --- a minimal keep-alive HTTP/1.1 client ----------------------------------------------------------------
class Connection:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        if body:
            lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = self._read_until(b"\r\n\r\n")
        status = int(head[9:12])
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            return status, self._read_chunked()
        return status, self._read_exactly(int(fields.get(b"content-length", b"0")))

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            parts.append(self._read_exactly(size))
            self._read_until(b"\r\n")
            if size == 0:
                return b"".join(parts)

    def close(self) -> None:
        self.sock.close()


# --- servers ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str], log: Path, cwd: str | Path = REPO_ROOT) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_ready(port: int, path: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            conn = Connection(port)
            status, _ = conn.request("GET", path)
            conn.close()
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not answer within {timeout}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


# --- measurements ----------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(conn: Connection, method: str, path: str, n: int, warmup: int, body_for=None, expect=None):
    headers = AUTH if path.startswith("/api/v1/") and "health" not in path else None
    latencies = []
    started = time.perf_counter()
    for i in range(warmup + n):
        body = body_for(i) if body_for else b""
        t0 = time.perf_counter()
        status, payload = conn.request(method, path, body, headers)
        elapsed = time.perf_counter() - t0
        if expect and status != expect:
            raise SystemExit(f"{method} {path} answered {status}: {payload[:300]!r}")
        if i == warmup - 1:
            started = time.perf_counter()
        if i >= warmup:
            latencies.append(elapsed)
    wall = time.perf_counter() - started
    return latencies, n / wall


def job_body(i: int, tag: str = "bench") -> bytes:
    return json.dumps({"command": "bench", "every": "1h", "title": f"{tag} {i}"}).encode()


def concurrent_worker(port: int, index: int, duration: float, barrier, results) -> None:
    conn = Connection(port)
    for i in range(10):  # warm-up, outside the timed window
        conn.request("POST", "/api/v1/cron/jobs", job_body(i, f"warm{index}"), AUTH)
    barrier.wait()
    latencies, count, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < duration:
        t0 = time.perf_counter()
        status, payload = conn.request("POST", "/api/v1/cron/jobs", job_body(count, f"c{index}"), AUTH)
        latencies.append(time.perf_counter() - t0)
        if status != 201:
            raise SystemExit(f"POST answered {status}: {payload[:300]!r}")
        count += 1
    results.put((latencies, time.perf_counter() - start))
    conn.close()


def concurrent_posts(port: int, clients: int, duration: float) -> tuple[list[float], float]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(clients), ctx.Queue()
    procs = [
        ctx.Process(target=concurrent_worker, args=(port, i, duration, barrier, results))
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    gathered = [results.get(timeout=duration + 120) for _ in procs]
    for proc in procs:
        proc.join()
    latencies = [x for lat, _ in gathered for x in lat]
    wall = max(w for _, w in gathered)
    return latencies, len(latencies) / wall


def bulk_create(port: int, total: int, batch: int) -> float | None:
    """Seconds to create `total` one-shot jobs in array POSTs of `batch` (None: no bulk endpoint)."""
    run_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    bodies = [
        json.dumps(
            [{"command": "import", "run_at": run_at, "title": f"import {b}-{i}"} for i in range(batch)]
        ).encode()
        for b in range(total // batch)
    ]
    conn = Connection(port)
    start = time.perf_counter()
    for body in bodies:
        status, payload = conn.request("POST", "/api/v1/cron/jobs", body, AUTH)
        if status in (400, 413) and body is bodies[0]:
            return None  # code from before the bulk endpoint existed
        if status != 201:
            raise SystemExit(f"bulk POST answered {status}: {payload[:300]!r}")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def replay_path(conn: Connection) -> str:
    """`?limit=1`, or once retention has trimmed seq 1 away (410), the oldest retained page."""
    path = "/api/v1/ops/scheduling/events?limit=1"
    status, payload = conn.request("GET", path, headers=AUTH)
    if status == 410:
        return f"{path}&since_seq={json.loads(payload)['oldest_seq'] - 1}"
    return path


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its child processes (all threads, user + system): the
    runtime's server children with --server-processes. On a busy shared box wall-clock latency mostly
    measures the run queue; the server's own CPU per request does not."""

    def own(stat: str) -> tuple[int, float]:
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    total = own(Path(f"/proc/{pid}/stat").read_text())[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent, seconds = own((entry / "stat").read_text())
            except OSError:
                continue
            if parent == pid:
                total += seconds
    return total


def quiesce(pid: int, timeout: float = 60.0) -> None:
    """Wait until a freshly started runtime (its children included) is idle: under 5% of a core for half
    a second, so its start-up work is not charged to the first row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.025:
            return


def settle(timeout: float = 300.0) -> None:
    """Wait until the runtime's embedded projector has applied every event in the log, so that one row's
    writes (5,000 bulk-created jobs, say) are not still being projected while the next row is timed."""
    from django.db import connection
    from django.db.models import Max

    from calendar_projection.models import ProjectionState
    from scheduling.models import LifecycleEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = LifecycleEvent.objects.aggregate(head=Max("seq"))["head"] or 0
        state = ProjectionState.objects.filter(name="calendar").first()
        if state is not None and state.last_event_seq >= head:
            return
        time.sleep(0.2)
    connection.close()
    raise SystemExit("the projector did not catch up with the log within 300 s")


def one_round(bare: tuple[str, int, int], counts: list[int], start_product, stop_products, args):
    """Every row once: the baseline, then each runtime (started for its rows and stopped after them)."""
    n, rows = args.requests, []
    mark = {"cpu": 0.0, "pid": bare[2]}

    def begin(pid: int) -> None:
        if pid != bare[2] and args.projector_runs:
            settle()
        mark["pid"], mark["cpu"] = pid, cpu_seconds(pid)

    def add(label: str, latencies: list[float], rate: float, untimed: int = 50) -> None:
        # CPU is read around the whole row, warm-up requests included.
        cpu_ms = (cpu_seconds(mark["pid"]) - mark["cpu"]) * 1e3 / (len(latencies) + untimed)
        rows.append(
            (label, percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3, rate, cpu_ms)
        )
        begin(mark["pid"])

    begin(bare[2])
    conn = Connection(bare[1])
    add(bare[0], *timed(conn, "GET", "/", n, 50, expect=200))
    conn.close()
    for count in counts:
        name, port, pid = start_product(count)
        begin(pid)
        conn = Connection(port)
        add(
            f"{name}: GET /static/nonexistent.css (404, no DB)",
            *timed(conn, "GET", "/static/nonexistent.css", n, 50, expect=404),
        )
        add(f"{name}: GET /api/v1/health", *timed(conn, "GET", "/api/v1/health", n, 50, expect=200))
        add(
            f"{name}: GET /api/v1/ops/scheduling/events?limit=1",
            *timed(conn, "GET", replay_path(conn), n, 50, expect=200),
        )
        add(
            f"{name}: POST /api/v1/cron/jobs, 1 client",
            *timed(conn, "POST", "/api/v1/cron/jobs", args.posts, 20, body_for=job_body, expect=201),
            untimed=20,
        )
        conn.close()
        add(
            f"{name}: POST /api/v1/cron/jobs, {args.clients} clients",
            *concurrent_posts(port, args.clients, args.duration),
            untimed=10 * args.clients,
        )
        seconds = bulk_create(port, args.bulk, 1000)
        rows.append(
            (
                f"{name}: bulk create {args.bulk:,} jobs ({args.bulk // 1000} x 1,000), total s",
                seconds or float("nan"),
                0.0,
                args.bulk / seconds if seconds else float("nan"),
                float("nan"),
            )
        )
        stop_products()
    return rows


def render(rows: list[tuple]) -> str:
    out = []
    for label, p50, p99, rate, cpu in rows:
        if label.startswith("bulk"):
            shown = "n/a" if p50 != p50 else f"{p50:.2f} s"  # NaN: no bulk endpoint in that code
            out.append([label, shown, "-", "-" if rate != rate else f"{rate:,.0f} jobs/s", "-"])
        else:
            out.append([label, f"{p50:.2f}", f"{p99:.2f}", f"{rate:,.0f}", f"{cpu:.2f}"])
    return format_table(["request", "p50 ms", "p99 ms", "req/s", "server CPU ms/req"], out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=500, help="timed GETs per row")
    parser.add_argument("--posts", type=int, default=300, help="timed single-client POSTs")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of concurrent POSTs")
    parser.add_argument("--bulk", type=int, default=5000)
    parser.add_argument(
        "--product-dir",
        default=str(REPO_ROOT),
        help="source tree whose manage.py to serve (e.g. an export of an older commit)",
    )
    parser.add_argument(
        "--server-processes",
        type=lambda text: text.split(","),
        default=["1", "2", "2api"],
        help="runtimes to measure, by their --server-processes; N + 'api' runs it with --no-workers, the "
        "API alone as with the scheduler and projector on other machines (default 1,2,2api)",
    )
    parser.add_argument("--keep-running", action="store_true", help="leave the servers up (for profiling)")
    args = parser.parse_args()
    args.projector_runs = True

    url = bootstrap()
    from scheduling.models import CronJob, CronRun, LifecycleEvent

    truncate(CronJob, CronRun, LifecycleEvent)
    for label, value in machine_facts():
        print(f"{label}: {value}")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "UA_OPS_TOKEN": TOKEN,
        "UA_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    bare_port = free_port()
    logs = Path(os.environ.get("BENCH_LOG_DIR", "/tmp"))
    bare = start(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(bare_port),
            "bench._bare_asgi:application",
        ],
        env,
        logs / "bench_api_bare.log",
    )
    product_servers: list[subprocess.Popen] = []

    def start_product(spec: str) -> tuple[str, int, int]:
        """One runtime at a time (two would each run a scheduler and a projector on this database), each
        from the same empty tables, measured once its start-up work has settled."""
        from calendar_projection.models import CalendarEntry, CalendarSource, ProjectionState

        truncate(CronJob, CronRun, LifecycleEvent, CalendarEntry, CalendarSource, ProjectionState)
        api_only = spec.endswith("api")
        count = int(spec.removesuffix("api"))
        port = free_port()
        name = "runtime" if count == 1 else f"runtime, {count} server processes"
        command = [sys.executable, "manage.py", "runtime", "--port", str(port)]
        if count > 1:
            command += ["--server-processes", str(count)]
        if api_only:
            name = f"API alone ({count} server processes, no scheduler or projector)"
            command += ["--no-workers"]
        process = start(command, env, logs / f"bench_api_runtime_{spec}.log", cwd=args.product_dir)
        product_servers.append(process)
        wait_ready(port, "/api/v1/health", process)
        args.projector_runs = not api_only
        quiesce(process.pid)
        print(f"{name}: pid {process.pid} port {port}", flush=True)
        return name, port, process.pid

    def stop_products() -> None:
        while product_servers:
            stop(product_servers.pop())

    try:
        wait_ready(bare_port, "/", bare)
        print(f"bare ASGI app: pid {bare.pid} port {bare_port}")
        rounds = []
        for number in range(1, args.rounds + 1):
            rows = one_round(
                ("bare ASGI app (Daphne baseline)", bare_port, bare.pid),
                args.server_processes,
                start_product,
                stop_products,
                args,
            )
            rounds.append(rows)
            print(f"\nround {number} (load avg {os.getloadavg()[0]:.2f})\n{render(rows)}", flush=True)
        if args.rounds > 1:
            median = [
                (row[0], *(statistics.median(r[i][k] for r in rounds) for k in (1, 2, 3, 4)))
                for i, row in enumerate(rounds[0])
            ]
            print(f"\nmedian of {args.rounds} rounds\n{render(median)}")
        if args.keep_running:
            start_product(args.server_processes[-1])
            print("servers left running; press Ctrl-C to stop", flush=True)
            signal.pause()
    finally:
        stop_products()
        stop(bare)


if __name__ == "__main__":
    main()
