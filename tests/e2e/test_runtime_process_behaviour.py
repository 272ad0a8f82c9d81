"""How `manage.py runtime` behaves as a process (issue 6, item 8), on the embedded default over real
sockets: a taken port ends it at once and cleanly, a token from the environment never reaches its output,
its log has one `key=value` line per run start, run end, miss and stasis entry, and it says when it stops."""

from __future__ import annotations

import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.processes import child_env, free_port, manage, stop, wait_for

SECRET = "env-secret-token-4f9c2b7e"


def embedded_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = child_env(UA_SQLITE_PATH=str(tmp_path / "runtime.sqlite3"), UA_OPS_AUTH="on", **overrides)
    env.pop("DATABASE_URL")
    return env


def scheduling_tables(path: Path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'scheduling_%'").fetchall()
    return [name for (name,) in rows]


def test_runtime_on_a_taken_port_exits_non_zero_at_once_naming_it_and_writing_nothing(tmp_path):
    port = free_port()
    log = tmp_path / "runtime.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        process = manage("runtime", "--port", str(port), env=embedded_env(tmp_path, UA_OPS_TOKEN=""), log=log)
        try:
            # A generous deadline: Django itself can take long to start on a loaded box.
            wait_for(lambda: process.poll() is not None, 120)
        finally:
            stop(process)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert process.returncode != 0
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], lines
    assert "token" not in lines[0].lower()
    # It stopped before migrating: no tables, so certainly no run, event or worker presence.
    assert scheduling_tables(tmp_path / "runtime.sqlite3") == []


def lines_with(log: Path, action: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if f"action={action} " in line]


def test_runtime_logs_runs_misses_and_stasis_as_key_value_lines_and_never_its_env_token(tmp_path):
    port, log = free_port(), tmp_path / "runtime.log"
    env = embedded_env(tmp_path, UA_OPS_TOKEN=SECRET)
    process = manage("runtime", "--port", str(port), env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SECRET}"}, timeout=10) as client:
            wait_for(lambda: _healthy(client), 60, 0.2)
            wrong = {"Authorization": "Bearer wrong"}
            assert client.get("/api/v1/cron/jobs", headers=wrong).status_code == 401
            job = client.post("/api/v1/cron/jobs", json={"command": "hourly", "cron_expr": "0 * * * *"})
            job_id = job.json()["job"]["job_id"]
            run_id = client.post(f"/api/v1/cron/jobs/{job_id}/run").json()["run"]["run_id"]
            finished = wait_for(lambda: lines_with(log, "run_finished"), 30, 0.2)
            # The default log format shows the fields as they are: time, level, logger, then key=value.
            assert len(finished) == 1 and finished[0].endswith(
                "INFO scheduling.lifecycle action=run_finished source=cron "
                f"job_id={job_id} run_id={run_id} reason=manual status=success"
            )
            assert lines_with(log, "run_started")[0].endswith(
                f"action=run_started source=cron job_id={job_id} run_id={run_id} reason=manual status=running"
            )
            _move_due_time_two_hours_back(tmp_path / "runtime.sqlite3", job_id)  # as after downtime
            wait_for(lambda: lines_with(log, "stasis_created"), 30, 0.2)
            missed = lines_with(log, "run_missed")
            # 2 h and 1 h ago, and the top of this hour unless it is still within the grace.
            assert len(missed) in (2, 3) and all(f"job_id={job_id} " in line for line in missed)
            assert all(line.endswith("reason=schedule status=missed") for line in missed)
            entry_id = lines_with(log, "stasis_created")[0].split("entry_id=")[1].split()[0]
        resolved = _resolve_in_another_process(tmp_path, env, entry_id)
        assert f"action=stasis_resolved source=cron job_id={job_id} entry_id={entry_id} " in resolved
        assert resolved.rstrip().endswith("status=deleted")
    finally:
        stop(process)
    output = log.read_text()
    assert process.returncode == 0
    assert "Dashboard login:" in output and output.rstrip().endswith("Scheduling Runtime stopped.")
    assert SECRET not in output


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/api/v1/health").status_code == 200
    except httpx.HTTPError:
        return False


def _move_due_time_two_hours_back(path: Path, job_id: str) -> None:
    """A direct write, like a restore or a clock jump: the next wake (a 5 s poll) finds two misses."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    due = (hour - timedelta(hours=2)).isoformat(sep=" ")
    with sqlite3.connect(path, timeout=20) as db:
        db.execute("UPDATE scheduling_cronjob SET next_run_at = ? WHERE job_id = ?", [due, job_id])


def _resolve_in_another_process(tmp_path: Path, env: dict[str, str], entry_id: str) -> str:
    log = tmp_path / "resolve.log"
    code = f"from scheduling.services import stasis; stasis.delete_missed({entry_id!r})"
    process = manage("shell", "-c", code, env=env, log=log)
    process.wait(60)
    assert process.returncode == 0, log.read_text()
    return log.read_text()
