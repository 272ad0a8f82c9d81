"""Recording what targets answered, renewing the leases of runs in flight, and finishing runs whose
scheduler died. Every running run ends here: success, error with a reason, never left `running`."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Subquery

from scheduling import clock
from scheduling.dispatch import MAX_OUTPUT_CHARS, Outcome
from scheduling.errors import is_transient_db_error, retry_transient
from scheduling.event_log import append_events
from scheduling.lifecycle import status_event
from scheduling.models import CronJob, CronRun, HeartbeatRun, HeartbeatSession, RunStatus
from scheduling.row_updates import update_in_groups
from scheduling.services import heartbeat_runs, heartbeats, notifications

logger = logging.getLogger(__name__)

# Lease owner of a run whose target answered 202: it waits for /complete until started_at + timeout.
AWAITING_CALLBACK = "awaiting-callback"
_FINISH_FIELDS = ["status", "output", "error", "finished_at", "lease_owner", "lease_expires_at"]


def record_outcomes(results: list[tuple[str, Outcome]], now: datetime) -> list[CronRun]:
    """Record a batch of outcomes in one transaction. Runs no longer running (finished by a lease sweep
    or a callback meanwhile) are left alone. Returns the runs that finished."""
    run_ids = [run_id for run_id, _ in results]
    with transaction.atomic():
        # Lock order (docs/architecture.md): job rows before run rows. The jobs a success may delete
        # (delete_after_run) are locked first, so finish_effects never waits on a job holding runs.
        of_these_runs = CronRun.objects.filter(run_id__in=run_ids).values("job_id")
        list(
            CronJob.objects.select_for_update()
            .filter(job_id__in=Subquery(of_these_runs), delete_after_run=True)
            .order_by("job_id")
        )
        runs = (
            CronRun.objects.select_for_update().filter(run_id__in=run_ids, status=RunStatus.RUNNING).in_bulk()
        )
        now = clock.now_under_lock(now)
        finished, waiting = [], []
        results = list(dict(results).items())  # one outcome per run, however the batch was assembled
        timeouts = _timeouts_of([runs[r] for r, o in results if o.status == "deferred" and r in runs])
        for run_id, outcome in results:
            run = runs.get(run_id)
            if run is None:
                continue
            if outcome.status == "deferred":
                run.lease_owner = AWAITING_CALLBACK
                run.lease_expires_at = _started_at(run) + timedelta(seconds=timeouts.get(run.job_id, 600))
                waiting.append(run)
                continue
            _finish(run, outcome.status, outcome.output, outcome.error, now)
            finished.append(run)
        update_in_groups(finished, _FINISH_FIELDS)
        update_in_groups(waiting, ["lease_owner", "lease_expires_at"])
        finish_effects(finished)
    return finished


def _started_at(run: CronRun) -> datetime:
    """A running run's start (set when it was claimed)."""
    if run.started_at is None:
        raise ValueError(f"running run {run.run_id} has no started_at")
    return run.started_at


def _finish(run: CronRun, status: str, output: str, error: str, now: datetime) -> None:
    run.status = status
    run.output = (output or "")[:MAX_OUTPUT_CHARS]
    run.error = (error or ("target reported an error" if status == RunStatus.ERROR else ""))[
        :MAX_OUTPUT_CHARS
    ]
    run.finished_at = now
    run.lease_owner, run.lease_expires_at = "", None


def _timeouts_of(runs: list[CronRun]) -> dict[str, int]:
    """Job timeouts for runs whose target answered 202: they wait for /complete that long."""
    if not runs:
        return {}
    jobs = CronJob.objects.filter(job_id__in={run.job_id for run in runs})
    return dict(jobs.values_list("job_id", "timeout_seconds"))


def finish_effects(finished: list[CronRun]) -> None:
    """Append the terminal events of `finished` and apply their effects: failure notifications,
    delete-after-run, waking the session's heartbeat.

    Lock order: the event-log lock is held until commit, so it must be the last lock a transaction
    takes. Every row this needs (jobs to delete, sessions to wake, and a per-job lock serialising the
    job's notifications) is locked first, in key order; only then are events appended."""
    if not finished:
        return
    jobs = CronJob.objects.in_bulk({run.job_id for run in finished})
    succeeded = sorted({r.job_id for r in finished if r.status == RunStatus.SUCCESS and r.job_id in jobs})
    failing = sorted({r.job_id for r in finished if r.status == RunStatus.ERROR and r.job_id in jobs})
    wakes = sorted({job.session_id for job in jobs.values() if _wakes_session(job)})
    # Only rows still there once locked are deleted: a job deleted meanwhile must not be "deleted" twice.
    doomed = list(
        CronJob.objects.select_for_update()
        .filter(job_id__in=[job_id for job_id in succeeded if jobs[job_id].delete_after_run])
        .order_by("job_id")
    )
    notifications.serialise_jobs(sorted({*failing, *succeeded}))
    list(HeartbeatSession.objects.select_for_update().filter(session_id__in=wakes).order_by("session_id"))
    append_events([status_event(run) for run in finished])
    notifications.resolve_failures(set(succeeded))
    for run in finished:
        if run.status == RunStatus.ERROR and run.job_id in jobs:
            notifications.notify_failure(jobs[run.job_id], run)
    for job in {jobs[r.job_id].job_id: jobs[r.job_id] for r in finished if r.job_id in jobs}.values():
        if _wakes_session(job):
            _wake_session(job)
    for job in doomed:
        if job.delete_after_run:
            job.delete()


def _wakes_session(job: CronJob) -> bool:
    return bool(job.session_id) and job.wake_heartbeat != "off"


def _wake_session(job: CronJob) -> None:
    """Wake the job's session. A wake that cannot happen (unknown session, a hand-edited row) is logged
    and skipped in a savepoint: it must never stop the run's outcome from being recorded."""
    reason = f"cron job {job.job_id} finished"
    try:
        with transaction.atomic():
            # Scoped to the job's owner: a job may only wake sessions its owner could wake through the API.
            heartbeats.request_wake(job.session_id, job.wake_heartbeat, reason, job.owner_id or None)
    except Exception as error:
        logger.info(
            "job %s could not wake session %s: %s",
            job.job_id,
            job.session_id,
            error,
            extra={"action": "wake_skipped"},
        )


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
    try:
        runs = retry_transient(_expire_leases, now, limit, True, action="lease_sweep_retry")
    except Exception as error:
        if is_transient_db_error(error):
            raise  # the database is busy or away: the next round sweeps again, with effects
        # One poisoned row must not stop every scheduler's sweep: record the bare failures instead.
        logger.exception("lease sweep with effects failed", extra={"action": "lease_sweep_failed"})
        runs = _expire_leases(now, limit, with_effects=False)
    if runs:
        logger.warning("expired %d run leases", len(runs), extra={"action": "lease_expired"})
    return runs


def _expire_leases(now: datetime, limit: int, with_effects: bool) -> list[CronRun]:
    with transaction.atomic():
        runs = list(
            CronRun.objects.select_for_update(skip_locked=True)
            .filter(status=RunStatus.RUNNING, lease_expires_at__lt=now)
            .order_by("lease_expires_at")[:limit]
        )
        now = clock.now_under_lock(now)
        for run in runs:
            if run.lease_owner == AWAITING_CALLBACK:
                if run.lease_expires_at is None:  # the query selects expired leases only
                    raise ValueError(f"run {run.run_id} has no lease to expire")
                seconds = int((run.lease_expires_at - _started_at(run)).total_seconds())
                reason = f"execution timed out after {seconds}s"
            else:
                reason = f"scheduler lost: lease held by {run.lease_owner or 'unknown'} expired while running"
            _finish(run, RunStatus.ERROR, run.output, reason, now)
        update_in_groups(runs, _FINISH_FIELDS)
        if with_effects:
            finish_effects(runs)
        else:
            append_events([status_event(run) for run in runs])
    return runs


def fail_run_plainly(run_id: str, reason: str, now: datetime) -> bool:
    """The last resort: mark a running run failed with its terminal event and nothing else."""
    with transaction.atomic():
        run = CronRun.objects.select_for_update().filter(run_id=run_id, status=RunStatus.RUNNING).first()
        if run is None:
            return False
        _finish(run, RunStatus.ERROR, "", reason, clock.now_under_lock(now))
        update_in_groups([run], _FINISH_FIELDS)
        append_events([status_event(run)])
    return True


def record_outcomes_resilient(
    results: list[tuple[str, Outcome]], now: datetime
) -> tuple[int, list[tuple[str, Outcome]]]:
    """Record a batch. A transient database error (deadlock, lock timeout, serialization failure,
    dropped connection) is retried with backoff and, if it persists, the outcomes are handed back
    unrecorded for the caller to retry later: only a permanent error may record a run as `error`. Then
    the batch is recorded run by run, and a run whose outcome itself cannot be stored is finished as an
    error saying so. Returns (runs finished, results still unrecorded)."""
    try:
        return len(retry_transient(record_outcomes, results, now, action="outcome_retry")), []
    except Exception as error:
        if is_transient_db_error(error):
            logger.warning("outcomes kept for a later retry: %s", error, extra={"action": "outcome_deferred"})
            return 0, list(results)
        logger.exception(
            "recording %d outcomes failed", len(results), extra={"action": "outcome_batch_failed"}
        )
    finished, unrecorded = 0, []
    for run_id, outcome in results:
        try:
            finished += len(
                retry_transient(record_outcomes, [(run_id, outcome)], now, action="outcome_retry")
            )
            continue
        except Exception as error:
            if is_transient_db_error(error):
                unrecorded.append((run_id, outcome))
                continue
            reason = f"the target's answer could not be recorded: {type(error).__name__}: {error}"[:1000]
        try:
            finished += int(retry_transient(fail_run_plainly, run_id, reason, now, action="outcome_retry"))
        except Exception:
            unrecorded.append((run_id, outcome))
    return finished, unrecorded


def record_heartbeat_results(results: list[tuple[str, Outcome]], now: datetime) -> list[tuple[str, Outcome]]:
    """Finish heartbeat runs one by one, with the same rules; returns those still unrecorded."""
    unrecorded = []
    for run_id, outcome in results:
        status = "success" if outcome.status in ("success", "deferred") else "error"
        try:
            retry_transient(
                heartbeat_runs.finish_heartbeat, run_id, status, outcome.output, outcome.error, now,
                action="outcome_retry",
            )  # fmt: skip
            continue
        except Exception as error:
            if is_transient_db_error(error):
                unrecorded.append((run_id, outcome))
                continue
            logger.exception("recording heartbeat %s failed", run_id, extra={"action": "outcome_failed"})
            reason = f"the target's answer could not be recorded: {type(error).__name__}"
        try:
            retry_transient(
                heartbeat_runs.fail_heartbeat_plainly, run_id, reason, now, action="outcome_retry"
            )
        except Exception:
            unrecorded.append((run_id, outcome))
    return unrecorded
