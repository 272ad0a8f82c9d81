"""Turning due occurrences and queued runs into running runs, exactly once across scheduler processes.

A claim is one short transaction: lock the due job rows with SKIP LOCKED (another scheduler takes the
next ones instead of waiting), insert the runs, append their events, advance `next_run_at`. Two
schedulers can therefore never start one occurrence twice; the unique (job, scheduled_at, attempt) key
is the backstop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from scheduling import clock, metrics
from scheduling.event_log import append_events
from scheduling.lifecycle import status_event
from scheduling.models import ACTIVE_RUN_STATUSES, CronJob, CronRun, RunReason, RunStatus
from scheduling.occurrences import newest_occurrences, next_occurrence_of
from scheduling.row_updates import update_in_groups
from scheduling.services import notifications, stasis
from scheduling.targets import default_target

logger = logging.getLogger(__name__)

# Most run rows one claim transaction writes (see claim_due_occurrences).
CLAIM_ROW_BUDGET = 1000


@dataclass
class Dispatch:
    """A run that has started and must now be delivered to its target."""

    run_id: str
    job_id: str
    target: dict
    body: dict[str, Any]
    timeout: float
    kind: str = "cron"


@dataclass
class ClaimPlan:
    now: datetime
    worker_id: str
    runs: list[CronRun] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    missed: dict[str, list[CronRun]] = field(default_factory=dict)
    parked: list[tuple[CronJob, str]] = field(default_factory=list)

    def start(self, job: CronJob, run: CronRun) -> None:
        run.created_at = min(run.created_at, self.now)  # a run made by this claim is created as it starts
        run.status, run.started_at = RunStatus.RUNNING, self.now
        run.lease_owner = self.worker_id
        run.lease_expires_at = self.now + timedelta(seconds=settings.UA_RUN_LEASE_SECONDS)
        job.last_run_at = self.now
        self.runs.append(run)
        self.dispatches.append(dispatch_for(job, run))

    def close(self, run: CronRun, status: str, error: str) -> None:
        run.created_at = min(run.created_at, self.now)
        run.status, run.finished_at, run.error = status, self.now, error
        self.runs.append(run)


def dispatch_for(job: CronJob, run: CronRun) -> Dispatch:
    body = {
        "run_id": run.run_id,
        "occurrence_id": run.occurrence_id,
        "job_id": job.job_id,
        "command": job.command,
        "scheduled_at": run.scheduled_at.timestamp() if run.scheduled_at else None,
        "session_id": job.session_id or None,
        "model": job.model or None,
        "metadata": job.metadata,
        "reason": run.reason,
        "attempt": run.attempt,
    }
    return Dispatch(run.run_id, job.job_id, job.target or default_target(), body, float(job.timeout_seconds))


def claim_due_occurrences(now: datetime, worker_id: str, limit: int) -> tuple[list[Dispatch], bool]:
    """Claim up to `limit` due jobs. Returns the runs to deliver and whether more jobs may be due."""
    with transaction.atomic():
        jobs = list(
            CronJob.objects.select_for_update(skip_locked=True)
            .filter(next_run_at__lte=now)
            .order_by("next_run_at")[:limit]
        )
        if not jobs:
            return [], False
        active = set(
            CronRun.objects.filter(
                job_id__in=[job.job_id for job in jobs], status__in=ACTIVE_RUN_STATUSES
            ).values_list("job_id", flat=True)
        )
        # Stamped after the overlap check read the runs: see clock.now_under_lock.
        plan = ClaimPlan(now=clock.now_under_lock(now), worker_id=worker_id)
        planned = []
        for job in jobs:
            if len(plan.runs) >= CLAIM_ROW_BUDGET:
                # Paced recovery: after long downtime every job brings up to UA_MISSED_RUN_RECORD_LIMIT
                # missed rows. Bounding the rows per transaction keeps the event-log lock short, so API
                # writes interleave with the catch-up instead of timing out behind one huge transaction.
                break
            _plan_job(job, plan, active)
            planned.append(job)
        paced, jobs = len(planned) < len(jobs), planned
        _drop_taken(plan)
        # Lock order: rows first, the event-log lock (held to commit) last.
        stasis.lock_pending_entries(sorted(plan.missed))
        CronRun.objects.bulk_create(plan.runs)
        update_in_groups(jobs, ["next_run_at", "last_run_at", "parked_reason"])
        append_events([status_event(run) for run in plan.runs])
        _file_misses(jobs, plan)
        record_due_lag([(run.started_at, run.scheduled_at) for run in plan.runs if run.reason == "schedule"])
    # More may be due: a full batch, or a job that resumed at an occurrence already inside the grace.
    more = len(jobs) == limit or paced or any(job.next_run_at and job.next_run_at <= now for job in jobs)
    return plan.dispatches, more


def _plan_job(job: CronJob, plan: ClaimPlan, active: set[str]) -> None:
    """Plan one job; a job whose stored schedule cannot be evaluated (hand-edited rows) is parked with a
    notification instead of stopping every other job in the batch."""
    marks = (len(plan.runs), len(plan.dispatches))
    grace = timedelta(seconds=settings.UA_MISFIRE_GRACE_SECONDS)
    try:
        due = job.next_run_at
        if due is None:  # the batch query selects due jobs only; parked below like any bad row
            raise ValueError("job has no next_run_at to claim")
        if plan.now - due > grace:
            _plan_missed(job, due, plan, active, plan.now - grace)
        else:
            _plan_on_time(job, due, plan, active)
    except Exception as error:
        logger.exception("cannot schedule job %s", job.job_id, extra={"action": "job_parked"})
        del plan.runs[marks[0] :], plan.dispatches[marks[1] :]
        plan.missed.pop(job.job_id, None)
        job.next_run_at = None
        # Recorded on the row: an enabled recurring job without a next run must say why (a CHECK).
        job.parked_reason = f"{type(error).__name__}: {error}"[:1000]
        plan.parked.append((job, job.parked_reason))


def _drop_taken(plan: ClaimPlan) -> None:
    """Leave out occurrences that already have a run (next_run_at set back by hand, say): one run per
    occurrence, ever, and one failed insert must not stall the whole batch."""
    keys = {(run.job_id, run.scheduled_at) for run in plan.runs if run.attempt == 1}
    if not keys:
        return
    taken = keys & set(
        CronRun.objects.filter(
            job_id__in={job_id for job_id, _ in keys}, scheduled_at__in={at for _, at in keys}, attempt=1
        ).values_list("job_id", "scheduled_at")
    )
    if not taken:
        return
    plan.runs = [run for run in plan.runs if (run.job_id, run.scheduled_at) not in taken]
    kept = {run.run_id for run in plan.runs}
    plan.dispatches = [d for d in plan.dispatches if d.run_id in kept]
    plan.missed = {
        job_id: runs
        for job_id, runs in ((j, [r for r in rs if r.run_id in kept]) for j, rs in plan.missed.items())
        if runs
    }


def _plan_on_time(job: CronJob, due: datetime, plan: ClaimPlan, active: set[str]) -> None:
    run = CronRun.for_job(job, reason=RunReason.SCHEDULE, scheduled_at=due)
    if job.overlap == "skip" and job.job_id in active:
        plan.close(run, RunStatus.SKIPPED, "previous run still running (overlap=skip)")
    else:
        plan.start(job, run)
        active.add(job.job_id)
    job.next_run_at = _following(job, due)


def _plan_missed(job: CronJob, due: datetime, plan: ClaimPlan, active: set[str], cutoff: datetime) -> None:
    """Every occurrence older than the grace is recorded as missed (the newest ones individually, the
    rest counted), then the job resumes at its first occurrence still within the grace."""
    keep = max(1, settings.UA_MISSED_RUN_RECORD_LIMIT)
    occurrences, omitted = newest_occurrences(job, due, cutoff, keep)
    catch_up = job.missed_policy == "run_once" and (job.overlap == "allow" or job.job_id not in active)
    grace = settings.UA_MISFIRE_GRACE_SECONDS
    missed_runs = []
    for index, moment in enumerate(occurrences):
        run = CronRun.for_job(job, reason=RunReason.SCHEDULE, scheduled_at=moment)
        if catch_up and index == len(occurrences) - 1:
            run.reason = RunReason.CATCH_UP
            plan.start(job, run)
            continue
        error = f"not started within the {grace}s misfire grace (runtime down or saturated)"
        if index == 0 and omitted:
            error += f"; {omitted} earlier occurrences were missed too and are not listed one by one"
        plan.close(run, RunStatus.MISSED, error)
        missed_runs.append(run)
    if missed_runs:
        plan.missed[job.job_id] = missed_runs
    job.next_run_at = None if job.schedule_kind == "at" else next_occurrence_of(job, cutoff)


def _following(job: CronJob, occurrence: datetime) -> datetime | None:
    return None if job.schedule_kind == "at" else next_occurrence_of(job, occurrence)


def _file_misses(jobs: list[CronJob], plan: ClaimPlan) -> None:
    """The newest miss of a stasis-policy job becomes its pending entry; misses notify the operator."""
    for job, reason in plan.parked:
        notifications.notify_schedule_error(job, reason)
    by_id = {job.job_id: job for job in jobs}
    for job_id, runs in plan.missed.items():
        job, newest = by_id[job_id], runs[-1]
        entry = None
        if job.missed_policy == "stasis":
            entry = stasis.open_entry(job, newest, plan.now, reason=newest.error)
        notifications.notify_missed(job, entry, len(runs), newest)


def record_due_lag(starts: list[tuple[datetime | None, datetime | None]]) -> None:
    """Due lag (start - nominal time) of scheduled runs that start, observed once their claim commits.
    Manual, backfill and catch-up runs are left out: their lateness is a decision, not scheduler lag."""
    lags = [(started - due).total_seconds() for started, due in starts if started and due]
    if lags:

        def observe_lags() -> None:
            for lag in lags:
                metrics.observe("due_lag_seconds", max(0.0, lag))

        transaction.on_commit(observe_lags)


def claim_queued_runs(now: datetime, worker_id: str, limit: int) -> list[Dispatch]:
    """Start queued runs (run-now, backfill approvals) in creation order. A queued run of an
    `overlap=skip` job whose other run is still running waits, queued, for a later pass."""
    with transaction.atomic():
        # Found unlocked, then locked in the global order: job rows, then their runs.
        candidates = list(
            CronRun.objects.filter(status=RunStatus.QUEUED)
            .order_by("created_at")
            .values_list("run_id", "job_id")[:limit]
        )
        if not candidates:
            return []
        job_ids = {job_id for _, job_id in candidates}
        # SKIP LOCKED on the jobs: a job row held by an edit or delete (which then waits for these
        # queued runs) must not be waited for, or the two would deadlock. Its runs wait for a later pass.
        jobs = CronJob.objects.select_for_update(skip_locked=True).filter(job_id__in=job_ids).in_bulk()
        existing = set(CronJob.objects.filter(job_id__in=job_ids).values_list("job_id", flat=True))
        runs = list(
            CronRun.objects.select_for_update(skip_locked=True)
            .filter(run_id__in=[run_id for run_id, _ in candidates], status=RunStatus.QUEUED)
            .order_by("created_at")
        )
        # Read under the job locks, so no run-now, approval or other claim can start one meanwhile.
        running = set(
            CronRun.objects.filter(job_id__in=list(jobs), status=RunStatus.RUNNING).values_list(
                "job_id", flat=True
            )
        )
        plan = ClaimPlan(now=clock.now_under_lock(now), worker_id=worker_id)
        for run in runs:
            job = jobs.get(run.job_id)
            if job is not None and not (job.overlap == "skip" and job.job_id in running):
                plan.start(job, run)
                running.add(job.job_id)
            elif job is None and run.job_id not in existing:
                plan.close(run, RunStatus.CANCELLED, "job deleted before the run started")
        update_in_groups(list(jobs.values()), ["last_run_at"])
        update_in_groups(
            plan.runs, ["status", "started_at", "finished_at", "error", "lease_owner", "lease_expires_at"]
        )
        append_events([status_event(run) for run in plan.runs])
    return plan.dispatches
