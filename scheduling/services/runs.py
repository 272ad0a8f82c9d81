"""Run lifecycle that clients drive: manual runs, callback completion, run lookups."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from scheduling import clock, snapshots
from scheduling.dispatch import Outcome
from scheduling.errors import Conflict, InvalidInput, NotFound
from scheduling.models import ACTIVE_RUN_STATUSES, CronRun, RunReason, RunStatus
from scheduling.pages import DEFAULT_LIMIT, Page, page_of
from scheduling.services.jobs import get_job, locked_job


def queue_manual_run(job_id: str, owner_id: str | None, reason: str = RunReason.MANUAL) -> CronRun:
    """Queue a run now; the scheduler starts it. Never waits for the target."""
    with transaction.atomic():
        # The overlap check reads the job row it locked: an earlier unlocked read could carry a stale
        # overlap policy, and the lock keeps a concurrent run-now, approval or claim from passing the
        # same check at the same time (lock order: job, then runs; docs/architecture.md).
        job = locked_job(job_id, owner_id)
        if job.overlap == "skip" and has_active_run(job.job_id):
            raise Conflict("the job is already running and its overlap policy is skip", "job_id")
        run = CronRun.for_job(job, reason=reason)
        run.save(force_insert=True)
    return run


def has_active_run(job_id: str) -> bool:
    """Whether the job has a queued or running run; callers hold the job row lock, so it stays true."""
    return CronRun.objects.filter(job_id=job_id, status__in=ACTIVE_RUN_STATUSES).exists()


def get_run(run_id: str, owner_id: str | None) -> CronRun:
    queryset = CronRun.objects.filter(run_id=run_id)
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    run = queryset.first()
    if run is None:
        raise NotFound(f"no run {run_id}", "run_id")
    return run


def list_runs(owner_id: str | None, job_id: str | None, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page:
    """One page of runs, newest first, with output previews only (a run's whole output can be large)."""
    if job_id is not None:
        get_job(job_id, owner_id)
    queryset = snapshots.preview_only(CronRun.objects.all())
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    if job_id is not None:
        queryset = queryset.filter(job_id=job_id)
    return page_of(queryset.order_by("-created_at", "-run_id"), limit, offset)


def clean_completion(data: Any) -> tuple[str, str, str]:
    """Validate a completion body `{"status": "success"|"error", "output"?, "error"?}`."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    status = data.get("status")
    if status not in (RunStatus.SUCCESS, RunStatus.ERROR):
        raise InvalidInput("status must be 'success' or 'error'", "status")
    output, error = data.get("output"), data.get("error")
    for name, value in (("output", output), ("error", error)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string", name)
    output, error = output or "", error or ""
    if status == RunStatus.ERROR and not error:
        error = "target reported an error"
    return status, output, error


def complete_run_from_callback(run_id: str, data: Any, owner_id: str | None) -> CronRun:
    """A target that answered 202 reports the outcome; it is recorded like any other (effects included).
    Completing a run that is no longer running answers 409."""
    from scheduling.services.outcomes import record_outcomes  # outcomes build on this module

    status, output, error = clean_completion(data)
    get_run(run_id, owner_id)
    finished = record_outcomes([(run_id, Outcome(status, output=output, error=error))], clock.now())
    if not finished:
        current = CronRun.objects.get(run_id=run_id).status
        raise Conflict(f"run {run_id} is {current}, not running", "run_id")
    return finished[0]
