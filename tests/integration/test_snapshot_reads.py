"""Reads that combine several queries see one snapshot (issue 6, item 6): a run finishing between the
`running` query and the `last_run` query of a job must not show the job as running with a finished last
run. PostgreSQL only: READ COMMITTED is what takes a new snapshot per statement there."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from scheduling import clock
from scheduling.models import CronRun, RunStatus
from scheduling.services import jobs as job_services
from tests.conftest import job_payload, requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def finish_elsewhere(run_id: str) -> None:
    """Commit the run's finish from another connection, as a scheduler process would."""

    def finish() -> None:
        try:
            CronRun.objects.filter(run_id=run_id).update(status=RunStatus.SUCCESS, finished_at=clock.now())
        finally:
            connection.close()

    thread = threading.Thread(target=finish)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def test_a_job_read_sees_running_and_last_run_as_of_one_moment(operator, monkeypatch):
    job = job_services.create_job(job_payload(), None)
    run = CronRun.for_job(job, reason="manual")
    run.status, run.started_at = RunStatus.RUNNING, clock.now()
    run.save(force_insert=True)
    read_last_runs = job_services._last_runs

    def finish_between_the_two_queries(job_ids: list[str]) -> dict:
        finish_elsewhere(run.run_id)
        return read_last_runs(job_ids)

    monkeypatch.setattr(job_services, "_last_runs", finish_between_the_two_queries)
    for path in (f"/api/v1/cron/jobs/{job.job_id}", "/api/v1/cron/jobs"):
        CronRun.objects.filter(run_id=run.run_id).update(status=RunStatus.RUNNING, finished_at=None)
        body = operator.get(path).json()
        shown = body["job"] if "job" in body else body["jobs"][0]
        assert (shown["running"], shown["last_run"]["status"]) == (True, "running"), path
    monkeypatch.undo()
    shown = operator.get(f"/api/v1/cron/jobs/{job.job_id}").json()["job"]
    assert (shown["running"], shown["last_run"]["status"]) == (False, "success")
