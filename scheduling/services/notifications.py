"""Operator notifications for misses and failures (contract §7).

`priority=low` jobs raise none. Repeated failures of one job collapse into its one live failure
notification (its `count` grows); the next success resolves it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from scheduling import clock
from scheduling.models import CronJob, CronRun, Notification, StasisEntry
from scheduling.pages import DEFAULT_LIMIT, Page, page_of

FAILURE = "run_failed"
MISSED = "run_missed"


def action_url(event_id: str) -> str:
    return f"{settings.UA_PUBLIC_BASE_URL}/api/v1/ops/calendar/events/{event_id}/action"


def notify_missed(job: CronJob, entry: StasisEntry | None, missed_count: int, newest: CronRun) -> None:
    if job.priority == "low":
        return
    event_id = entry.event_id if entry else newest.occurrence_id
    actions = (
        [
            {"action": name, "method": "POST", "url": action_url(event_id)}
            for name in ("approve_backfill_run", "reschedule", "delete_missed")
        ]
        if entry
        else []
    )
    noun = "occurrence" if missed_count == 1 else "occurrences"
    _upsert(
        job,
        MISSED,
        newest.run_id,
        title=f"{job.title or job.job_id} missed {missed_count} {noun}",
        detail=newest.error or "not started within the misfire grace",
        actions=actions,
        collapse=False,
    )


def notify_failure(job: CronJob, run: CronRun) -> None:
    if job.priority == "low":
        return
    event_id = run.occurrence_id
    _upsert(
        job,
        FAILURE,
        run.run_id,
        title=f"{job.title or job.job_id} failed",
        detail=run.error,
        actions=[{"action": "run_now", "method": "POST", "url": action_url(event_id)}],
        collapse=True,
    )


def serialise_jobs(job_ids: list[str]) -> None:
    """Take a per-job lock, in key order, before any event append: two transactions recording outcomes of
    one job then update its live notification one after the other, never each holding what the other
    waits for. PostgreSQL advisory locks leave the job rows free for claims; SQLite serialises anyway."""
    if connection.vendor != "postgresql" or not job_ids:
        return
    with connection.cursor() as cursor:
        for job_id in job_ids:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"notifications:{job_id}"])


def notify_schedule_error(job: CronJob, detail: str) -> None:
    """A job whose stored schedule cannot be evaluated was parked (next_run_at cleared)."""
    _upsert(
        job,
        "schedule_invalid",
        "",
        title=f"{job.title or job.job_id} cannot be scheduled",
        detail=f"{detail}; fix the job and save it to resume",
        actions=[],
        collapse=True,
    )


def resolve_failures(job_ids: set[str]) -> None:
    """A success resolves its job's live failure notification (one statement for a whole batch)."""
    if job_ids:
        Notification.objects.filter(
            source="cron", source_ref__in=job_ids, kind=FAILURE, status="live"
        ).update(status="resolved", updated_at=clock.now())


def resolve_missed(entry: StasisEntry) -> None:
    """A stasis entry's miss notification resolves with the entry, whichever surface resolved it (the
    action endpoint, a change request, admin) or a newer miss superseding it: its links would only
    answer 409 from then on."""
    Notification.objects.filter(
        source=entry.source, source_ref=entry.source_ref, kind=MISSED, run_id=entry.run_id, status="live"
    ).update(status="resolved", updated_at=clock.now())


def _upsert(
    job: CronJob, kind: str, run_id: str, *, title: str, detail: str, actions: list, collapse: bool
) -> Notification:
    now = clock.now()
    if collapse:
        live = (
            Notification.objects.select_for_update()
            .filter(source="cron", source_ref=job.job_id, kind=kind, status="live")
            .first()
        )
        if live is not None:
            live.count += 1
            live.detail, live.run_id, live.updated_at, live.actions = detail, run_id, now, actions
            live.save(update_fields=["count", "detail", "run_id", "updated_at", "actions"])
            return live
    return Notification.objects.create(
        kind=kind,
        source="cron",
        source_ref=job.job_id,
        owner_id=job.owner_id,
        title=title[:300],
        detail=detail,
        actions=actions,
        run_id=run_id,
        created_at=now,
        updated_at=now,
    )


def list_notifications(
    owner_id: str | None, status: str | None = "live", limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page:
    queryset = Notification.objects.all()
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    if status:
        queryset = queryset.filter(status=status)
    return page_of(queryset.order_by("-updated_at", "notification_id"), limit, offset)
