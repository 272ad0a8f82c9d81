"""One `key=value` log line per run start, run end, miss and stasis entry, written only once the change
committed (issue 6, item 8). The process-level view of the same lines is in tests/e2e."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import transaction

from scheduling import clock
from scheduling.dispatch import Outcome
from scheduling.models import CronJob, CronRun
from scheduling.services import claims, outcomes, stasis
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def lifecycle_lines(caplog):
    caplog.set_level(logging.INFO, logger="scheduling.lifecycle")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "scheduling.lifecycle"]


def test_a_run_and_a_miss_each_log_their_lines_after_commit(
    frozen_now, lifecycle_lines, django_capture_on_commit_callbacks
):
    job = job_services.create_job(job_payload(every="1h"), None)
    clock.advance(timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        [started], _ = claims.claim_due_occurrences(clock.now(), "w", 10)
        assert lifecycle_lines() == []  # inside the transaction nothing is logged yet
    with django_capture_on_commit_callbacks(execute=True):
        outcomes.record_outcomes([(started.run_id, Outcome("error", error="boom"))], clock.now())
    clock.advance(timedelta(hours=3))
    with django_capture_on_commit_callbacks(execute=True):
        claims.claim_due_occurrences(clock.now(), "w", 10)
    entry = stasis.list_entries(None).rows[0]
    with django_capture_on_commit_callbacks(execute=True):
        stasis.delete_missed(entry.entry_id)
    prefix = f"source=cron job_id={job.job_id}"
    assert lifecycle_lines() == [
        f"action=run_started {prefix} run_id={started.run_id} reason=schedule status=running",
        f"action=run_finished {prefix} run_id={started.run_id} reason=schedule status=error",
        *[f"action=run_missed {prefix} run_id={run} reason=schedule status=missed" for run in _missed(job)],
        f"action=stasis_created {prefix} entry_id={entry.entry_id} run_id={entry.run_id} status=pending",
        f"action=stasis_resolved {prefix} entry_id={entry.entry_id} run_id={entry.run_id} status=deleted",
    ]


def _missed(job: CronJob) -> list[str]:
    runs = CronRun.objects.filter(job_id=job.job_id, status="missed").order_by("scheduled_at")
    return list(runs.values_list("run_id", flat=True))


def test_work_that_rolls_back_logs_nothing(frozen_now, lifecycle_lines, django_capture_on_commit_callbacks):
    job_services.create_job(job_payload(every="1h"), None)
    clock.advance(timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            claims.claim_due_occurrences(clock.now(), "w", 10)
            raise RuntimeError("the claim's transaction fails after its writes")
    assert lifecycle_lines() == []
