"""Recording what targets answered, renewing the leases of runs in flight, and finishing runs whose
scheduler died. Every running run ends here: success, error with a reason, never left `running`."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from scheduling.dispatch import Outcome
from scheduling.event_log import append_events
from scheduling.models import CronJob, CronRun, HeartbeatRun, RunStatus
from scheduling.row_updates import update_in_groups
from scheduling.services import notifications
from scheduling.signals import cron_run_event

logger = logging.getLogger(__name__)

# Lease owner of a run whose target answered 202: it waits for /complete until started_at + timeout.
AWAITING_CALLBACK = "awaiting-callback"
MAX_OUTPUT_CHARS = 64 * 1024
_FINISH_FIELDS = ["status", "output", "error", "finished_at", "lease_owner", "lease_expires_at"]


def record_outcomes(results: list[tuple[str, Outcome]], now: datetime) -> list[CronRun]:
    """Record a batch of outcomes in one transaction. Runs no longer running (finished by a lease sweep
    or a callback meanwhile) are left alone. Returns the runs that finished."""
    with transaction.atomic():
        runs = (
            CronRun.objects.select_for_update()
            .filter(run_id__in=[run_id for run_id, _ in results], status=RunStatus.RUNNING)
            .in_bulk()
        )
        finished, waiting = [], []
        for run_id, outcome in results:
            run = runs.get(run_id)
            if run is None:
                continue
            if outcome.status == "deferred":
                run.lease_owner = AWAITING_CALLBACK
                run.lease_expires_at = run.started_at + timedelta(seconds=_timeout_of(run))
                waiting.append(run)
                continue
            _finish(run, outcome.status, outcome.output, outcome.error, now)
            finished.append(run)
        update_in_groups(finished, _FINISH_FIELDS)
        update_in_groups(waiting, ["lease_owner", "lease_expires_at"])
        append_events([cron_run_event(run, _terminal_event(run)) for run in finished])
        after_runs(finished)
    return finished


def _finish(run: CronRun, status: str, output: str, error: str, now: datetime) -> None:
    run._loaded_status = status
    run.status = status
    run.output = (output or "")[:MAX_OUTPUT_CHARS]
    run.error = (error or ("target reported an error" if status == RunStatus.ERROR else ""))[
        :MAX_OUTPUT_CHARS
    ]
    run.finished_at = now
    run.lease_owner, run.lease_expires_at = "", None


def _terminal_event(run: CronRun) -> str:
    return "cron_run_failed" if run.status == RunStatus.ERROR else "cron_run_completed"


def _timeout_of(run: CronRun) -> int:
    job = CronJob.objects.filter(job_id=run.job_id).only("timeout_seconds").first()
    return job.timeout_seconds if job else 600


def after_runs(finished: list[CronRun]) -> None:
    """Effects of finished runs: delete-after-run, failure notifications, waking the session heartbeat."""
    if not finished:
        return
    jobs = CronJob.objects.in_bulk({run.job_id for run in finished})
    succeeded = {run.job_id for run in finished if run.status == RunStatus.SUCCESS}
    notifications.resolve_failures(succeeded)
    for run in finished:
        job = jobs.get(run.job_id)
        if job is None:
            continue
        if run.status == RunStatus.ERROR:
            notifications.notify_failure(job, run)
        elif run.status == RunStatus.SUCCESS and job.delete_after_run:
            job.delete()
            jobs.pop(run.job_id)
        _wake_session(job, run)


def _wake_session(job: CronJob, run: CronRun) -> None:
    if not job.session_id or job.wake_heartbeat == "off":
        return
    from scheduling.services import heartbeats  # heartbeats depend on runs' outcomes, not the reverse

    heartbeats.request_wake(job.session_id, job.wake_heartbeat, f"cron job {job.job_id} finished", None)


def renew_leases(run_ids: list[str], worker_id: str, now: datetime) -> int:
    """Extend the leases of this worker's cron and heartbeat runs still in flight."""
    if not run_ids:
        return 0
    expires = now + timedelta(seconds=settings.UA_RUN_LEASE_SECONDS)
    renewed = 0
    for model in (CronRun, HeartbeatRun):
        renewed += model.objects.filter(
            run_id__in=run_ids, status=RunStatus.RUNNING, lease_owner=worker_id
        ).update(lease_expires_at=expires)
    return renewed


def expire_leases(now: datetime, limit: int = 200) -> list[CronRun]:
    """Finish running runs whose lease lapsed: their scheduler died, or their callback never came."""
    with transaction.atomic():
        runs = list(
            CronRun.objects.select_for_update(skip_locked=True)
            .filter(status=RunStatus.RUNNING, lease_expires_at__lt=now)
            .order_by("lease_expires_at")[:limit]
        )
        for run in runs:
            if run.lease_owner == AWAITING_CALLBACK:
                seconds = int((run.lease_expires_at - run.started_at).total_seconds())
                reason = f"execution timed out after {seconds}s"
            else:
                reason = f"scheduler lost: lease held by {run.lease_owner or 'unknown'} expired while running"
            _finish(run, RunStatus.ERROR, run.output, reason, now)
        update_in_groups(runs, _FINISH_FIELDS)
        append_events([cron_run_event(run, "cron_run_failed") for run in runs])
        after_runs(runs)
    if runs:
        logger.warning("expired %d run leases", len(runs), extra={"action": "lease_expired"})
    return runs
