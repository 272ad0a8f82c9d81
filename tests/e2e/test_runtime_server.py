"""`manage.py runtime` over real sockets on the embedded default: migrates, serves the API with the
generated-token rule, and its scheduler thread runs a job."""

from __future__ import annotations

import httpx
import pytest

from tests.processes import child_env, free_port, manage, stop, wait_for


@pytest.fixture
def runtime(tmp_path):
    port = free_port()
    env = child_env(UA_SQLITE_PATH=str(tmp_path / "runtime.sqlite3"), UA_OPS_TOKEN="", UA_OPS_AUTH="on")
    env.pop("DATABASE_URL")
    log = tmp_path / "runtime.log"
    process = manage("runtime", "--port", str(port), env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base), 60, 0.2)
        token = wait_for(lambda: _generated_token(log), 10)
        yield base, token, log
    finally:
        stop(process)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _generated_token(log) -> str | None:
    for line in log.read_text().splitlines():
        if "operator token:" in line:
            return line.split("operator token:")[1].strip()
    return None


def test_runtime_generates_a_token_serves_the_api_and_runs_jobs(runtime):
    base, token, log = runtime
    assert "Dashboard login:" in log.read_text()
    assert httpx.get(f"{base}/api/v1/cron/jobs").status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        job = client.post("/api/v1/cron/jobs", json={"command": "hello", "every": "1h"}).json()["job"]
        queued = client.post(f"/api/v1/cron/jobs/{job['job_id']}/run")
        assert queued.status_code == 202
        run_id = queued.json()["run"]["run_id"]
        run = wait_for(lambda: _finished(client, run_id), 30, 0.2)
        assert run["status"] == "success" and run["output_preview"] == "CRON_OK"
        health = client.get("/api/v1/health").json()
        assert health["scheduler"]["status"] == "running"
        events = client.get("/api/v1/ops/scheduling/events").json()["events"]
        assert [e["event_type"] for e in events] == [
            "cron_job_created",
            "cron_run_started",
            "cron_run_completed",
        ]


def _finished(client: httpx.Client, run_id: str) -> dict | None:
    run = client.get(f"/api/v1/cron/runs/{run_id}").json()["run"]
    return run if run["status"] not in ("queued", "running") else None


def test_runtime_runs_a_heartbeat_on_a_wake_now_request(runtime):
    base, token, _ = runtime
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        assert client.put("/api/v1/heartbeat/sessions/agent-1", json={"every": "30m"}).status_code in (
            200,
            201,
        )
        client.post("/api/v1/system/event", json={"session_id": "agent-1", "text": "deploy finished"})
        assert (
            client.post("/api/v1/heartbeat/wake", json={"session_id": "agent-1", "mode": "now"}).status_code
            < 300
        )
        last = wait_for(lambda: _last_heartbeat(client, "agent-1"), 20, 0.2)
        assert last["last_run"]["status"] == "success"
        assert last["last_summary"]["ok_only"] is True
        events = client.get("/api/v1/system/events", params={"session_id": "agent-1"}).json()["events"]
        assert events[0]["delivered_at"] is not None


def _last_heartbeat(client: httpx.Client, session_id: str) -> dict | None:
    body = client.get("/api/v1/heartbeat/last", params={"session_id": session_id}).json()
    run = body.get("last_run")
    return body if run and run["status"] not in ("queued", "running") else None
