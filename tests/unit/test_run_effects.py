"""What finishing a run does besides recording it: session wake-ups and callback completion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling import clock
from scheduling.dispatch import Outcome
from scheduling.models import CronJob, CronRun, HeartbeatSession, WakeRequest
from scheduling.services import claims, outcomes, runs
from scheduling.services import heartbeats as heartbeat_services
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def run_job_once(**job_fields):
    with clock.frozen(T0):
        job = job_services.create_job(job_payload(**job_fields), None)
        run = runs.queue_manual_run(job.job_id, None)
        claims.claim_queued_runs(T0, "w", 10)
    return job, run


def test_session_bound_job_wakes_its_sessions_next_heartbeat_after_it_finishes():
    with clock.frozen(T0):
        heartbeat_services.upsert_session("s-1", {"every": "30m"}, None)
    job, run = run_job_once(session_id="s-1", wake_heartbeat="now")
    with clock.frozen(T0 + timedelta(seconds=5)):
        outcomes.record_outcomes([(run.run_id, Outcome("success", output="ok"))], clock.now())
    session = HeartbeatSession.objects.get()
    assert session.pending_wake == "now" and session.next_due_at <= T0 + timedelta(seconds=5)
    assert WakeRequest.objects.get().reason == f"cron job {job.job_id} finished"


def test_job_naming_a_session_without_heartbeat_still_finishes():
    _, run = run_job_once(session_id="ghost")
    outcomes.record_outcomes([(run.run_id, Outcome("success"))], T0)
    assert CronRun.objects.get(run_id=run.run_id).status == "success"


def test_callback_completion_applies_the_same_effects_as_a_direct_answer():
    job, run = run_job_once(delete_after_run=True)
    outcomes.record_outcomes([(run.run_id, Outcome("deferred"))], T0)
    assert CronRun.objects.get(run_id=run.run_id).status == "running"
    runs.complete_run_from_callback(run.run_id, {"status": "success", "output": "later"}, None)
    assert CronRun.objects.get(run_id=run.run_id).output == "later"
    assert not CronJob.objects.filter(job_id=job.job_id).exists()


def test_a_hand_edited_job_that_cannot_wake_its_session_still_records_its_outcome():
    with clock.frozen(T0):
        heartbeat_services.upsert_session("s-2", {"every": "30m"}, None)
    job, run = run_job_once(session_id="s-2")
    CronJob.objects.filter(job_id=job.job_id).update(wake_heartbeat="bogus")
    finished, unrecorded = outcomes.record_outcomes_resilient([(run.run_id, Outcome("success"))], T0)
    assert (finished, unrecorded) == (1, [])
    assert CronRun.objects.get(run_id=run.run_id).status == "success"


def test_a_hand_edited_session_config_does_not_block_finishing_its_heartbeat():
    from scheduling.services import heartbeat_runs

    with clock.frozen(T0):
        heartbeat_services.upsert_session("s-3", {"every": "30m"}, None)
    HeartbeatSession.objects.filter(session_id="s-3").update(delivery=["x"], visibility="loud")
    due = HeartbeatSession.objects.get(session_id="s-3").next_due_at
    [hb_run] = heartbeat_runs.claim_due_heartbeats(due, "w", 30)
    assert (
        outcomes.record_heartbeat_results([(hb_run.run_id, Outcome("success", output="HEARTBEAT_OK"))], due)
        == []
    )
    hb_run.refresh_from_db()
    assert hb_run.status == "success"


def test_the_same_run_twice_in_one_batch_gets_one_terminal_event():
    from scheduling.models import LifecycleEvent

    _, run = run_job_once()
    outcomes.record_outcomes([(run.run_id, Outcome("error", error="a")), (run.run_id, Outcome("error"))], T0)
    terminal = LifecycleEvent.objects.filter(payload__run_id=run.run_id, event_type="cron_run_failed")
    assert terminal.count() == 1
