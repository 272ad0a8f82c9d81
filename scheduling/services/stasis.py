"""The stasis queue (contract §7): a missed occurrence waits here for an operator decision.

At most one pending entry per job: a newer miss supersedes the older one (`skipped_superseded`).
Resolved entries never return to pending.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from scheduling import clock, schedule
from scheduling.errors import Conflict, InvalidInput, NotFound
from scheduling.models import CronJob, CronRun, RunReason, StasisEntry, StasisStatus
from scheduling.pages import DEFAULT_LIMIT, Page, page_of
from scheduling.services import notifications
from scheduling.services.jobs import create_job, get_job, locked_job
from scheduling.services.runs import has_active_run
from scheduling.snapshots import run_snapshot


def open_entry(job: CronJob, missed: CronRun, now: datetime, reason: str) -> StasisEntry:
    """Make `missed` the job's pending entry (caller holds the transaction and the job row lock)."""
    scheduled_at = missed.scheduled_at
    if scheduled_at is None:  # a missed run is always an occurrence
        raise ValueError(f"missed run {missed.run_id} has no scheduled_at")
    for older in StasisEntry.objects.select_for_update().filter(
        source="cron", source_ref=job.job_id, status=StasisStatus.PENDING
    ):
        older.status, older.resolved_at = StasisStatus.SKIPPED_SUPERSEDED, now
        notifications.resolve_missed(older)
        older.save()
    entry = StasisEntry(
        event_id=f"cron|{job.job_id}|{int(scheduled_at.timestamp())}",
        source="cron",
        source_ref=job.job_id,
        owner_id=job.owner_id,
        session_id=job.session_id,
        channel=job.channel,
        scheduled_at=scheduled_at,
        detected_at=now,
        reason=reason,
        run_id=missed.run_id,
        event={"title": job.title or job.command[:200], "run": run_snapshot(missed)},
    )
    entry.save(force_insert=True)
    return entry


def lock_pending_entries(job_ids: list[str]) -> None:
    """Lock these jobs' pending entries (callers lock rows before appending events)."""
    if job_ids:
        list(
            StasisEntry.objects.select_for_update()
            .filter(source="cron", source_ref__in=job_ids, status=StasisStatus.PENDING)
            .order_by("entry_id")
        )


def get_entry(entry_or_event_id: str, owner_id: str | None) -> StasisEntry:
    queryset = StasisEntry.objects.all()
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    entry = (
        queryset.filter(entry_id=entry_or_event_id).first()
        or queryset.filter(event_id=entry_or_event_id).order_by("-detected_at").first()
    )
    if entry is None:
        raise NotFound(f"no stasis entry {entry_or_event_id}", "entry_id")
    return entry


def list_entries(
    owner_id: str | None,
    status: str | None = StasisStatus.PENDING,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> Page:
    queryset = StasisEntry.objects.all()
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    if status:
        queryset = queryset.filter(status=status)
    return page_of(queryset.order_by("-detected_at", "entry_id"), limit, offset)


def approve_backfill_run(entry_id: str, owner_id: str | None = None) -> CronRun:
    """Run the missed occurrence now, keeping its original `scheduled_at` (as attempt 2 of it)."""
    with transaction.atomic():
        # Lock order: the job row, then its entry (a claim locks jobs before their pending entries).
        # Under the job lock the overlap check cannot race a run-now, another approval or a claim.
        job = locked_job(get_entry(entry_id, owner_id).source_ref, owner_id)
        entry = _lock_pending(entry_id, owner_id)
        if job.overlap == "skip" and has_active_run(job.job_id):
            raise Conflict(
                "the job is running and its overlap policy is skip; approve after it finishes", "entry_id"
            )
        attempt = 1 + max(
            CronRun.objects.filter(job_id=job.job_id, scheduled_at=entry.scheduled_at).values_list(
                "attempt", flat=True
            ),
            default=0,
        )
        run = CronRun.for_job(
            job, reason=RunReason.BACKFILL, scheduled_at=entry.scheduled_at, attempt=attempt
        )
        run.save(force_insert=True)
        _resolve(entry, StasisStatus.APPROVED_AND_RUN, run.run_id)
    return run


def reschedule(
    entry_id: str, run_at: Any = None, timezone: str | None = None, owner_id: str | None = None
) -> CronJob:
    """A one-shot copy of the job at `run_at` (default now + 1 h), marked as the backfill of the job."""
    with transaction.atomic():
        entry = _lock_pending(entry_id, owner_id)
        job = get_job(entry.source_ref, owner_id)
        tz_name = timezone or job.timezone
        when = run_at if run_at not in (None, "") else clock.iso(clock.now() + timedelta(hours=1))
        try:
            schedule.parse_run_at(when, tz_name, clock.now())
        except schedule.ScheduleError as error:
            raise InvalidInput(error.detail, error.field) from None
        copy = create_job(_one_shot_copy(job, when, tz_name), job.owner_id if owner_id is None else owner_id)
        _resolve(entry, StasisStatus.RESCHEDULED, "")
    return copy


def delete_missed(entry_id: str, owner_id: str | None = None) -> StasisEntry:
    with transaction.atomic():
        entry = _lock_pending(entry_id, owner_id)
        _resolve(entry, StasisStatus.DELETED, "")
    return entry


def schedule_one_shot_copy(
    job_id: str, run_at: Any, timezone: str | None = None, owner_id: str | None = None
) -> CronJob:
    """A one-shot copy of the job at `run_at`, marked as its backfill, with no stasis entry involved (a
    change request such as "in 2 hours" on an occurrence that was not missed)."""
    with transaction.atomic():
        job = get_job(job_id, owner_id)
        tz_name = timezone or job.timezone
        return create_job(
            _one_shot_copy(job, run_at, tz_name), job.owner_id if owner_id is None else owner_id
        )


def _one_shot_copy(job: CronJob, run_at: Any, tz_name: str) -> dict[str, Any]:
    return {
        "command": job.command,
        "run_at": run_at,
        "timezone": tz_name,
        "user_id": job.owner_id,
        "session_id": job.session_id,
        "channel": job.channel,
        "title": job.title,
        "priority": job.priority,
        "wake_heartbeat": job.wake_heartbeat,
        "timeout_seconds": job.timeout_seconds,
        "target": job.target,
        "model": job.model,
        "delete_after_run": True,
        "metadata": {**(job.metadata or {}), "backfill_for_job_id": job.job_id},
    }


def _lock_pending(entry_id: str, owner_id: str | None) -> StasisEntry:
    entry = get_entry(entry_id, owner_id)
    entry = StasisEntry.objects.select_for_update().get(entry_id=entry.entry_id)
    if entry.status != StasisStatus.PENDING:
        raise Conflict(f"stasis entry {entry.entry_id} is already {entry.status}", "entry_id")
    return entry


def _resolve(entry: StasisEntry, status: str, run_id: str) -> None:
    # Miss notifications are only ever inserted elsewhere, so this update joins no lock cycle.
    notifications.resolve_missed(entry)
    entry.status, entry.resolved_at, entry.resolution_run_id = status, clock.now(), run_id
    entry.save()
