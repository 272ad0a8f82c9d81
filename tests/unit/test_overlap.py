"""`overlap=skip` holds however a run gets queued: the claim of queued runs re-checks it under the job
row's lock (one body for SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling import clock
from scheduling.dispatch import Outcome
from scheduling.errors import Conflict
from scheduling.models import CronRun, RunReason
from scheduling.services import claims, outcomes, runs
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_queued_run_of_an_overlap_skip_job_waits_while_another_runs():
    with clock.frozen(T0):
        job = job_services.create_job(job_payload(every="1h"), None)
        first = runs.queue_manual_run(job.job_id, None)
        [started] = claims.claim_queued_runs(T0, "w", 10)
        # A second queued run of the job, as a racing run-now or approval could leave behind.
        late = CronRun.for_job(job, reason=RunReason.MANUAL)
        late.save(force_insert=True)

        assert claims.claim_queued_runs(T0, "w", 10) == []
        assert CronRun.objects.get(run_id=late.run_id).status == "queued"
        with pytest.raises(Conflict):
            runs.queue_manual_run(job.job_id, None)

        outcomes.record_outcomes([(first.run_id, Outcome("success", output="ok"))], T0)
        [next_started] = claims.claim_queued_runs(T0 + timedelta(seconds=1), "w", 10)
    assert started.run_id == first.run_id and next_started.run_id == late.run_id


def test_queued_runs_of_an_overlap_allow_job_start_together():
    with clock.frozen(T0):
        job = job_services.create_job(job_payload(every="1h", overlap="allow"), None)
        runs.queue_manual_run(job.job_id, None)
        runs.queue_manual_run(job.job_id, None)
        assert len(claims.claim_queued_runs(T0, "w", 10)) == 2
