"""Recorded history never shows an overlap that did not happen: started_at and finished_at are read where
the rows are written (after the locks), not from a clock reading taken before the transaction. Run with
the real clock, on whichever database the run uses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduling import clock
from scheduling.dispatch import Outcome
from scheduling.models import CronJob, CronRun, HeartbeatRun
from scheduling.services import claims, heartbeat_runs, outcomes
from scheduling.services import heartbeats as heartbeat_services
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
WORKER = "scheduler:test:1"


def make_due(job: CronJob, at) -> None:
    CronJob.objects.filter(job_id=job.job_id).update(next_run_at=at)


def test_a_claim_whose_clock_reading_predates_a_finish_starts_after_that_finish():
    job = job_services.create_job(job_payload(every="1h", overlap="skip"), None)
    make_due(job, clock.now() - timedelta(seconds=1))
    [first], _ = claims.claim_due_occurrences(clock.now(), WORKER, 10)
    # Scheduler B reads its clock for a claim; scheduler A reads its clock a little later, records the
    # first run's finish and commits; only then does B's claim transaction run.
    b_reading = clock.now()
    a_reading = b_reading + timedelta(milliseconds=50)
    outcomes.record_outcomes([(first.run_id, Outcome("success", output="ok"))], a_reading)
    make_due(job, b_reading - timedelta(seconds=1))
    [second], _ = claims.claim_due_occurrences(b_reading, WORKER, 10)
    finished = CronRun.objects.get(run_id=first.run_id)
    started = CronRun.objects.get(run_id=second.run_id)
    assert finished.status == "success" and started.status == "running"
    assert finished.started_at <= finished.finished_at <= started.started_at


def test_a_heartbeat_claim_whose_clock_reading_predates_a_finish_starts_after_that_finish():
    heartbeat_services.upsert_session("s-1", {"every": "30m"}, None)
    heartbeat_services.request_wake("s-1", "now", "", None)
    [first] = heartbeat_runs.claim_due_heartbeats(clock.now(), WORKER, 30)
    heartbeat_services.request_wake("s-1", "now", "", None)
    b_reading = clock.now()
    heartbeat_runs.finish_heartbeat(
        first.run_id, "success", "HEARTBEAT_OK", "", b_reading + timedelta(seconds=1)
    )
    [second] = heartbeat_runs.claim_due_heartbeats(b_reading, WORKER, 30)
    finished = HeartbeatRun.objects.get(run_id=first.run_id)
    started = HeartbeatRun.objects.get(run_id=second.run_id)
    assert finished.started_at <= finished.finished_at <= started.started_at


def test_a_frozen_clock_still_stamps_the_time_the_test_passes(frozen_now):
    job = job_services.create_job(job_payload(every="1h"), None)
    due = frozen_now + timedelta(hours=1)
    [run], _ = claims.claim_due_occurrences(due, WORKER, 10)
    outcomes.record_outcomes([(run.run_id, Outcome("success"))], due + timedelta(seconds=5))
    recorded = CronRun.objects.get(run_id=run.run_id)
    assert (recorded.started_at, recorded.finished_at) == (due, due + timedelta(seconds=5))
    assert job.next_run_at == due
