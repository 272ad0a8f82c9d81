"""Database faults against real processes on PostgreSQL: terminated sessions, an outage (a TCP proxy the
test cuts, see tests/faults.py) and, once, a real restart of the server.

What must hold: the API never answers 500 for a database it cannot reach (503 with Retry-After instead),
health says so within 2 s, pooled connections the server closed are never handed to a request, a run in
flight across an outage longer than its lease keeps its real outcome, and recorded run times never show
an overlap that did not happen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
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
from tests.processes import child_env, manage, start_daphne, stop, wait_for

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
        log = tmp_path / f"daphne-{len(started)}.log"
        process, port = start_daphne(log, **{"UA_OPS_TOKEN": OPERATOR_TOKEN, **env})
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


# --- a real restart of the shared server ------------------------------------------------------------------


def pg_ctlcluster(action: str) -> subprocess.CompletedProcess:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action == "stop":
        command += ["--mode", "fast"]  # ends every session at once, as a crash or a failover does
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def database_accepts_connections() -> bool:
    connection.close()
    try:
        connection.ensure_connection()
    except Exception:
        return False
    return True


@pytest.fixture
def restartable_postgres():
    """A server this test may stop and start. Other test runs share it, so the outage is kept to a few
    seconds, and the server is started again whatever happens."""
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        pytest.skip("needs pg_ctlcluster to restart the local PostgreSQL cluster")
    try:
        yield
    finally:
        pg_ctlcluster("start")
        wait_for(database_accepts_connections, 60, 0.5)


class Observer:
    """Sends requests to the server from a thread for as long as the test runs, keeping every answer."""

    def __init__(self, base: str) -> None:
        self.base, self.answers, self.stopping = base, [], threading.Event()
        self.thread = threading.Thread(target=self._observe, daemon=True)
        self.thread.start()

    def _observe(self) -> None:
        while not self.stopping.is_set():
            for path in ("/api/v1/cron/jobs", "/api/v1/health"):
                try:
                    response = httpx.get(f"{self.base}{path}", headers=HEADERS, timeout=30)
                except httpx.HTTPError as error:
                    self.answers.append((path, type(error).__name__, None))
                    continue
                error = _error_code(response) if response.status_code >= 400 else None
                self.answers.append((path, response.status_code, error))
            self.stopping.wait(0.2)

    def stop(self) -> list[tuple[str, object, object]]:
        self.stopping.set()
        self.thread.join(60)
        return self.answers


def _error_code(response: httpx.Response) -> object:
    try:
        return response.json().get("error")
    except ValueError:
        return "not json"


@pytest.mark.exclusive  # the server is shared with the other test workers
def test_a_real_database_restart_longer_than_the_lease_loses_no_outcome_and_never_answers_500(
    restartable_postgres, daphne, schedulers
):
    lease = 2
    base = daphne()
    schedulers(2, UA_RUN_LEASE_SECONDS=str(lease))
    job = job_services.create_job(job_payload(target={"type": "handler", "name": "sleep:3"}), None)
    run = run_services.queue_manual_run(job.job_id, None)
    started = wait_for(lambda: CronRun.objects.filter(run_id=run.run_id, status="running").first(), 30)
    observer = Observer(base)
    stopped = pg_ctlcluster("stop")
    assert stopped.returncode == 0, stopped.stderr
    # Down for longer than the lease, and until the target has answered (sleep:3 from its start).
    wait_for(
        lambda: (
            clock.now()
            > max(started.lease_expires_at, started.started_at + timedelta(seconds=3)) + timedelta(seconds=1)
        ),
        30,
    )
    assert pg_ctlcluster("start").returncode == 0
    wait_for(database_accepts_connections, 60, 0.5)
    finished = wait_for(
        lambda: CronRun.objects.exclude(status="running").filter(run_id=run.run_id).first(), 60
    )
    wait_for(lambda: _answers(f"{base}/api/v1/health"), 30, 0.2)
    answers = observer.stop()
    assert (finished.status, finished.output) == ("success", "slept 3s"), finished.error
    assert not [answer for answer in answers if answer[1] == 500], answers
    # Every refusal was the contract's 503 with a JSON error, and the server answers normally again.
    assert {error for _, status, error in answers if status == 503} <= {"database_unavailable", None}
    assert statuses(base, [("GET", "/api/v1/cron/jobs")] * 3) == {200: 3}


def test_recorded_runs_of_overlap_skip_jobs_never_overlap_across_schedulers(schedulers, settings):
    settings.UA_CRON_MIN_INTERVAL_SECONDS = 1
    schedulers(3, UA_CRON_MIN_INTERVAL_SECONDS="1")
    # Each run takes about as long as the interval, so one scheduler's finish and another's start of the
    # job's next occurrence keep landing within milliseconds of each other.
    target = {"type": "handler", "name": "sleep:0.97"}
    jobs = [
        job_services.create_job(
            job_payload(every="1s", overlap="skip", target=target, title=f"tick {i}"), None
        )
        for i in range(20)
    ]
    wait_for(lambda: CronRun.objects.filter(status="success").count() >= 100, 120, 0.5)
    for job in jobs:
        job_services.delete_job(job.job_id, None)
    wait_for(lambda: not CronRun.objects.filter(status__in=("queued", "running")).exists(), 30)
    for job in jobs:
        runs = list(
            CronRun.objects.filter(job_id=job.job_id, started_at__isnull=False).order_by(
                "started_at", "run_id"
            )
        )
        for earlier, later in zip(runs, runs[1:], strict=False):
            assert earlier.finished_at <= later.started_at, (earlier.run_id, later.run_id)
