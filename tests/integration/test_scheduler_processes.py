"""Scheduler processes against one real PostgreSQL database: exactly-once dispatch, lease recovery after
kill -9, change pickup through LISTEN/NOTIFY, and miss detection at start-up."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import pytest

from scheduling import clock
from scheduling.models import CronJob, CronRun, LifecycleEvent, StasisEntry, WorkerPresence
from scheduling.services import jobs as job_services
from scheduling.services import runs as run_services
from tests.conftest import job_payload, requires_postgres
from tests.processes import child_env, manage, stop, wait_for

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def schedulers(tmp_path):
    started = []

    def start(count=1, **env):
        for index in range(count):
            log = tmp_path / f"scheduler-{len(started)}.log"
            started.append(
                manage(
                    "run_scheduler",
                    "--worker-id",
                    f"test-{len(started)}-{index}",
                    env=child_env(**env),
                    log=log,
                )
            )
        # A generous deadline: process start-up (Django import) alone can take tens of seconds on a busy box.
        wait_for(lambda: WorkerPresence.objects.filter(kind="scheduler").count() >= len(started), 120)
        return started[-count:]

    yield start
    for process in started:
        stop(process)


def test_three_schedulers_dispatch_a_thousand_occurrences_exactly_once(schedulers, settings):
    schedulers(3, UA_CRON_MAX_CONCURRENCY="50")
    due = clock.iso(clock.now() + timedelta(seconds=3))
    for index in range(1000):
        job_services.create_job(
            job_payload(
                every=None,
                run_at=due,
                title=f"burst {index}",
                target={"type": "handler", "name": "sleep:0.01"},
            ),
            None,
        )
    wait_for(lambda: CronRun.objects.filter(status="success").count() >= 1000, 90, 0.5)
    runs = list(CronRun.objects.values_list("job_id", "status", "lease_owner"))
    assert len(runs) == 1000
    assert Counter(job for job, _, _ in runs).most_common(1)[0][1] == 1
    assert {status for _, status, _ in runs} == {"success"}
    started = LifecycleEvent.objects.filter(event_type="cron_run_started").values_list(
        "payload__run_id", flat=True
    )
    completed = LifecycleEvent.objects.filter(event_type="cron_run_completed").values_list(
        "payload__run_id", flat=True
    )
    assert len(started) == len(set(started)) == 1000 and set(started) == set(completed)


def test_kill_9_mid_run_leaves_no_run_running_after_the_lease(schedulers):
    victim = schedulers(1, UA_RUN_LEASE_SECONDS="3")[0]
    job = job_services.create_job(job_payload(target={"type": "handler", "name": "sleep:60"}), None)
    run = run_services.queue_manual_run(job.job_id, None)
    wait_for(lambda: CronRun.objects.get(run_id=run.run_id).status == "running", 20)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    schedulers(1, UA_RUN_LEASE_SECONDS="3")
    finished = wait_for(
        lambda: CronRun.objects.exclude(status="running").filter(run_id=run.run_id).first(), 30
    )
    assert finished.status == "error" and finished.error.startswith("scheduler lost")
    events = LifecycleEvent.objects.filter(payload__run_id=run.run_id).order_by("seq")
    assert [e.event_type for e in events] == ["cron_run_started", "cron_run_failed"]


def test_job_created_by_another_process_fires_without_a_restart(schedulers):
    # A 300 s safety poll: only the NOTIFY can make the scheduler see this job within the deadline.
    schedulers(1, UA_SCHEDULER_SAFETY_POLL_SECONDS="300")
    job = job_services.create_job(job_payload(every=None, run_at="2s"), None)
    run = wait_for(lambda: CronRun.objects.filter(job_id=job.job_id, status="success").first(), 20)
    assert run.scheduled_at == job.run_at


def test_downtime_is_detected_at_start_with_one_stasis_entry_per_job(schedulers):
    jobs = [job_services.create_job(job_payload(every="1h", title=f"down {i}"), None) for i in range(3)]
    # Pretend the runtime was down for five hours: the jobs' schedules started 5.5 h ago.
    back = clock.now() - timedelta(hours=5, minutes=30)
    CronJob.objects.update(anchor_at=back, next_run_at=back + timedelta(hours=1))
    schedulers(1)
    wait_for(lambda: StasisEntry.objects.filter(status="pending").count() == 3, 30)
    for job in jobs:
        assert CronRun.objects.filter(job_id=job.job_id, status="missed").count() == 5
    assert LifecycleEvent.objects.filter(event_type="cron_run_missed").count() == 15


def test_scheduler_recovers_when_the_database_drops_its_connections(schedulers):
    from django.db import connection

    # libpq names the child's connections (its pool and its LISTEN connection) after PGAPPNAME.
    schedulers(1, UA_SCHEDULER_SAFETY_POLL_SECONDS="300", PGAPPNAME="doomed-scheduler")
    with connection.cursor() as cursor:
        # A database blip for the scheduler: every one of its sessions is killed.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'doomed-scheduler' AND datname = current_database()"
        )
        assert len(cursor.fetchall()) >= 2  # its query connection and its LISTEN connection
    job = job_services.create_job(job_payload(every=None, run_at="3s"), None)
    run = wait_for(lambda: CronRun.objects.filter(job_id=job.job_id, status="success").first(), 30)
    assert run.scheduled_at == job.run_at
