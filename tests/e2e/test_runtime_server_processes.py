"""`manage.py runtime --server-processes N` (issue 10): N server processes accept on the runtime's one
port, beside the scheduler and projector in the runtime's own process. Real processes and sockets, on the
test's PostgreSQL database (the option needs PostgreSQL; on SQLite it refuses with one line)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import job_payload, requires_postgres
from tests.processes import ROOT, child_env, free_port, manage, stop, wait_for

TOKEN = "server-processes-test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _server_pids(log: Path) -> list[int]:
    match = re.search(r"Serving from \d+ processes: ([\d ]+)", log.read_text())
    return [int(pid) for pid in match.group(1).split()] if match else []


def _projector_pid(log: Path) -> int | None:
    match = re.search(r"Projector process: (\d+)", log.read_text())
    return int(match.group(1)) if match else None


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _projector_status(client: httpx.Client) -> str:
    return client.get("/api/v1/health").json()["projector"]["status"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_server_processes_serve_one_port_restart_when_killed_and_stop_with_the_runtime(tmp_path):
    port, log = free_port(), tmp_path / "runtime.log"
    process = manage(
        "runtime", "--port", str(port), "--server-processes", "2",
        env=child_env(UA_OPS_TOKEN=TOKEN, UA_OPS_AUTH="on", UA_PROJECTOR_NICE="10"), log=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        servers = wait_for(lambda: len(_server_pids(log)) == 2 and _server_pids(log), 90, 0.2)
        projector = wait_for(lambda: _projector_pid(log), 30, 0.2)
        assert {*servers, projector} <= _children_of(process.pid)
        # The projector is a process of its own at a lower CPU priority (UA_PROJECTOR_NICE, 10).
        wait_for(lambda: _nice(projector) == 10, 30, 0.2)
        with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
            wait_for(lambda: client.get("/api/v1/health").status_code == 200, 60, 0.2)
            # Many connections, each a fresh accept: the kernel spreads them over both processes, and every
            # one sees the same database (a job made through one process is read back through another).
            created = [client.post("/api/v1/cron/jobs", json=job_payload()) for _ in range(4)]
            assert [response.status_code for response in created] == [201] * 4
            wait_for(lambda: _projector_status(client) == "running", 60, 0.2)
        for response in created:
            job_id = response.json()["job"]["job_id"]
            assert httpx.get(f"{base}/api/v1/cron/jobs/{job_id}", headers=HEADERS).status_code == 200
        # The operator token is the children's by inheritance: it never shows on a command line.
        for pid in servers:
            assert TOKEN not in Path(f"/proc/{pid}/cmdline").read_text()

        os.kill(servers[0], signal.SIGKILL)
        replaced = wait_for(lambda: (_children_of(process.pid) - {*servers, projector}) or None, 30, 0.2)
        assert servers[1] in _children_of(process.pid)
        wait_for(
            lambda: all(httpx.get(f"{base}/api/v1/health").status_code == 200 for _ in range(4)), 60, 0.2
        )

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert "Scheduling Runtime stopped." in log.read_text()
        for pid in [servers[1], projector, *replaced]:
            wait_for(lambda pid=pid: not _alive(pid), 15, 0.1)
    finally:
        stop(process)


def test_server_processes_above_one_on_sqlite_exit_1_with_one_line(tmp_path):
    env = {**os.environ, "UA_SQLITE_PATH": str(tmp_path / "runtime.sqlite3"), "UA_OPS_TOKEN": TOKEN}
    env.pop("DATABASE_URL", None)
    command = ["runtime", "--port", str(free_port()), "--server-processes", "2"]
    finished = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *command],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert finished.returncode == 1
    assert finished.stderr.strip().splitlines() == [
        "CommandError: --server-processes above 1 needs PostgreSQL (set DATABASE_URL=postgres://...)"
    ]
    assert TOKEN not in finished.stdout + finished.stderr
