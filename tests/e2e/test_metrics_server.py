"""Metrics of a real server process: counted requests reach the database through the background flusher
(no metrics endpoint asked), survive a restart, and both metrics surfaces serve them over HTTP."""

from __future__ import annotations

import sqlite3

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import child_env, free_port, manage, stop, wait_for

TOKEN = "e2e-operator-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def serve(env: dict, log) -> tuple:
    port = free_port()
    process = manage("runtime", "--port", str(port), "--no-workers", env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base), 60, 0.2)
    except AssertionError:
        stop(process)
        raise
    return process, base


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stored(database, name: str) -> float | None:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT value FROM scheduling_runtimemetric WHERE name = ?", [name]).fetchone()
    return row[0] if row else None


def wake(base: str) -> None:
    response = httpx.post(f"{base}/api/v1/heartbeat/wake", json={"mode": "next"}, headers=HEADERS, timeout=10)
    assert response.status_code == 200, response.text


def test_a_server_flushes_counts_in_the_background_and_they_survive_a_restart(tmp_path):
    database = tmp_path / "runtime.sqlite3"
    env = child_env(UA_SQLITE_PATH=str(database), UA_OPS_TOKEN=TOKEN, UA_METRICS_FLUSH_SECONDS="0.2")
    env.pop("DATABASE_URL")
    process, base = serve(env, tmp_path / "first.log")
    try:
        for _ in range(3):
            wake(base)
        wait_for(lambda: stored(database, "heartbeat_wake_requests") == 3, 20, 0.1)
    finally:
        stop(process)
    process, base = serve(env, tmp_path / "second.log")
    try:
        wake(base)
        document = httpx.get(f"{base}/api/v1/ops/metrics/scheduling-runtime", headers=HEADERS, timeout=10)
        assert document.json()["metrics"]["counters"]["heartbeat_wake_requests"] == 4
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
        scrape = httpx.get(f"{base}/metrics", headers=HEADERS, timeout=10)
        families = {family.name: family for family in text_string_to_metric_families(scrape.text)}
        assert families["scheduling_heartbeat_wake_requests"].samples[0].value == 4
        assert families["scheduling_due_lag_seconds"].type == "histogram"
    finally:
        stop(process)
