"""Database faults against real processes on PostgreSQL: terminated sessions, an outage (a TCP proxy the
test cuts, see tests/faults.py) and, once, a real restart of the server.

What must hold: the API never answers 500 for a database it cannot reach (503 with Retry-After instead),
health says so within 2 s, pooled connections the server closed are never handed to a request, a run in
flight across an outage longer than its lease keeps its real outcome, and recorded run times never show
an overlap that did not happen.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.db import connection

from scheduling import clock
from scheduling.models import CronRun, HeartbeatRun, LifecycleEvent
from scheduling.services import heartbeats as heartbeat_services
from scheduling.services import jobs as job_services
from scheduling.services import runs as run_services
from tests.conftest import OPERATOR_TOKEN, job_payload, requires_postgres
from tests.faults import DatabaseProxy
from tests.processes import ROOT, child_env, free_port, manage, stop, wait_for

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

HEADERS = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
def proxy():
    settings = connection.settings_dict
    database_proxy = DatabaseProxy(settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432))
    yield database_proxy
    database_proxy.close()


def proxied_url(proxy: DatabaseProxy) -> str:
    return f"postgres://{connection.settings_dict['USER']}@127.0.0.1:{proxy.port}/{connection.settings_dict['NAME']}"


def terminate_sessions_of(application_name: str) -> int:
    """Kill the sessions of one application in this test's database only (others share the server)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            [application_name],
        )
        return len(cursor.fetchall())


@pytest.fixture
def daphne(tmp_path):
    """Start `daphne config.asgi:application` (the production server) with the given environment."""
    started = []

    def start(**env: str) -> str:
        port = free_port()
        log = open(tmp_path / f"daphne-{len(started)}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=ROOT,
            env=child_env(UA_OPS_TOKEN=OPERATOR_TOKEN, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/api/v1/health"), 60, 0.2)
        return base

    yield start
    for process in started:
        stop(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def schedulers(tmp_path):
    started = []

    def start(count: int = 1, **env: str) -> None:
        for _ in range(count):
            log = tmp_path / f"scheduler-{len(started)}.log"
            started.append(
                manage("run_scheduler", "--worker-id", f"fault-{len(started)}", env=child_env(**env), log=log)
            )

    yield start
    for process in started:
        stop(process)


def statuses(base: str, requests: list[tuple[str, str]], workers: int = 10) -> Counter:
    """Status codes of the requests, sent `workers` at a time."""

    def send(request: tuple[str, str]) -> int:
        method, path = request
        body = job_payload() if method == "POST" else None
        return httpx.request(method, f"{base}{path}", json=body, headers=HEADERS, timeout=30).status_code

    with ThreadPoolExecutor(workers) as pool:
        return Counter(pool.map(send, requests))


def test_requests_right_after_the_server_sessions_are_terminated_never_answer_500(daphne):
    base = daphne(PGAPPNAME="fault-server")
    reads = [("GET", "/api/v1/cron/jobs")] * 16
    assert statuses(base, reads, workers=8) == {200: 16}  # leaves several connections in the pool
    assert terminate_sessions_of("fault-server") >= 2
    after = statuses(base, [*reads, *[("POST", "/api/v1/cron/jobs")] * 4], workers=8)
    assert after == {200: 16, 201: 4}


def test_while_the_database_is_unreachable_the_api_answers_503_and_health_says_so_within_2_s(daphne, proxy):
    # A short pool timeout keeps the test quick; the default (10 s) only makes the 503 come later.
    base = daphne(DATABASE_URL=proxied_url(proxy), UA_DB_POOL_TIMEOUT="3")
    assert statuses(base, [("GET", "/api/v1/cron/jobs")]) == {200: 1}
    for mode in ("refuse", "blackhole"):
        proxy.cut(mode)
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(unreachable_answer, [base] * 2, ["GET", "POST"]))
        assert answers == [(503, "database_unavailable", True)] * 2, mode
        # The contract's bound is 2 s; the client allows 4 so a loaded machine does not flake, which still
        # tells the bounded answer from the pool's 10 s wait.
        health = httpx.get(f"{base}/api/v1/health", timeout=4)
        assert health.status_code == 503 and health.json()["db_status"].startswith("error")
        proxy.restore()
        wait_for(lambda: _answers(f"{base}/api/v1/health"), 30, 0.2)
        assert statuses(base, [("GET", "/api/v1/cron/jobs")] * 4) == {200: 4}


def unreachable_answer(base: str, method: str) -> tuple[int, str | None, bool]:
    response = httpx.request(
        method, f"{base}/api/v1/cron/jobs", json=job_payload(), headers=HEADERS, timeout=30
    )
    body = response.json() if response.headers.get("content-type") == "application/json" else {}
    retry_after = response.headers.get("Retry-After", "")
    return response.status_code, body.get("error"), retry_after.isdigit() and int(retry_after) > 0


def test_runs_in_flight_across_an_outage_longer_than_their_lease_keep_their_real_outcome(proxy, schedulers):
    lease = 3
    schedulers(2, DATABASE_URL=proxied_url(proxy), UA_RUN_LEASE_SECONDS=str(lease))
    job = job_services.create_job(job_payload(target={"type": "handler", "name": "sleep:2"}), None)
    run = run_services.queue_manual_run(job.job_id, None)
    heartbeat_services.upsert_session("s-1", {"target": {"type": "handler", "name": "sleep:2"}}, None)
    heartbeat_services.request_wake("s-1", "now", "outage test", None)
    running = wait_for(
        lambda: (
            CronRun.objects.filter(run_id=run.run_id, status="running").first()
            and HeartbeatRun.objects.filter(session_id="s-1", status="running").first()
        ),
        30,
    )
    cron_lease = CronRun.objects.get(run_id=run.run_id).lease_expires_at
    proxy.cut("refuse")
    # Hold the outage until both leases have lapsed by more than a lease period: the targets have answered
    # by then, and only their schedulers, cut off from the database, know it.
    wait_for(
        lambda: clock.now() > max(cron_lease, running.lease_expires_at) + timedelta(seconds=lease + 1), 30
    )
    proxy.restore()
    finished = wait_for(
        lambda: CronRun.objects.exclude(status="running").filter(run_id=run.run_id).first(), 30
    )
    beat = wait_for(
        lambda: HeartbeatRun.objects.exclude(status="running").filter(run_id=running.run_id).first(), 30
    )
    assert (finished.status, finished.error, finished.output) == ("success", "", "slept 2s")
    assert (beat.status, beat.error) == ("success", "")
    events = LifecycleEvent.objects.filter(payload__run_id=run.run_id).order_by("seq")
    assert [event.event_type for event in events] == ["cron_run_started", "cron_run_completed"]
