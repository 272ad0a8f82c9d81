"""The scan path of the calendar feed (UA_SCHED_EVENT_PROJECTION_ENABLED=0): the same feed computed per
request from jobs, runs, heartbeat sessions and stasis entries, with the same rules as the projection
(`expansion.upcoming`, `shapes`). It is the reference the projection is compared against
(`manage.py projection compare`) and the fallback before the projector has built anything."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q

from calendar_projection.expansion import Recurrence, upcoming
from calendar_projection.shapes import (
    CALENDAR_STATUS,
    Occurrence,
    SourceInfo,
    assemble,
    event_id_of,
    run_rank,
)
from calendar_projection.sources import MAX_MATERIALISED
from calendar_projection.window import Window
from scheduling import snapshots
from scheduling.models import CronJob, CronRun, HeartbeatRun, HeartbeatSession, StasisEntry


def scan_feed(
    window: Window, source: str, owner_id: str | None, now: datetime, max_per_job: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(events, always_running, stasis_queue) for the window."""
    found: dict[str, tuple[tuple, Occurrence, SourceInfo]] = {}
    if source in ("all", "cron"):
        _cron(found, window, owner_id, now)
    if source in ("all", "heartbeat"):
        _heartbeats(found, window, owner_id, now)
    pending = _pending(owner_id, source)
    events, dense = assemble(
        [(occ, info) for _, occ, info in found.values()], window.tz, window.tz_name,
        {entry["event_id"] for entry in pending}, max_per_job,
    )  # fmt: skip
    return events, dense, pending


def _owned(queryset: Any, owner_id: str | None) -> Any:
    return queryset if owner_id is None else queryset.filter(owner_id=owner_id)


def _in_window(window: Window) -> Q:
    nominal = Q(scheduled_at__gte=window.start, scheduled_at__lt=window.end)
    manual = Q(scheduled_at__isnull=True, created_at__gte=window.start, created_at__lt=window.end)
    return nominal | manual


def _keep(found: dict, rank: tuple, occ: Occurrence, info: SourceInfo) -> None:
    held = found.get(occ.event_id)
    if held is None or rank > held[0]:
        found[occ.event_id] = (rank, occ, info)


def _cron(found: dict, window: Window, owner_id: str | None, now: datetime) -> None:
    jobs = {job.job_id: job for job in _owned(CronJob.objects.all(), owner_id)}
    infos = {job_id: _job_info(job) for job_id, job in jobs.items()}
    runs = _owned(CronRun.objects.filter(_in_window(window)), owner_id).exclude(status="queued")
    for run in runs:
        info = infos.get(run.job_id) or infos.setdefault(run.job_id, _deleted_job_info(run))
        occ = Occurrence(run.occurrence_id, run.scheduled_at or run.created_at, CALENDAR_STATUS[run.status],
                         run.owner_id, run.run_id, run.status)  # fmt: skip
        _keep(found, run_rank(run.attempt, run.created_at.timestamp(), run.run_id), occ, info)
    for job in jobs.values():
        rec = Recurrence(job.schedule_kind, job.timezone, job.cron_expr, job.every_seconds, job.run_at,
                         job.anchor_at)  # fmt: skip
        _upcoming(found, "cron", job.job_id, job.owner_id, rec, job.enabled, infos[job.job_id], window, now)


def _heartbeats(found: dict, window: Window, owner_id: str | None, now: datetime) -> None:
    sessions = {s.session_id: s for s in _owned(HeartbeatSession.objects.all(), owner_id)}
    infos = {sid: _session_info(s) for sid, s in sessions.items()}
    runs = _owned(HeartbeatRun.objects.filter(_in_window(window)), owner_id).exclude(status="queued")
    for run in runs:
        info = infos.get(run.session_id) or infos.setdefault(run.session_id, _deleted_session_info(run))
        nominal = run.scheduled_at or run.created_at
        status = CALENDAR_STATUS.get(run.status)
        if status is None:
            continue
        occ = Occurrence(event_id_of("heartbeat", run.session_id, nominal), nominal, status, run.owner_id,
                         run.run_id, run.status)  # fmt: skip
        created = (run.started_at or run.finished_at or run.created_at).timestamp()
        _keep(found, run_rank(1, created, run.run_id), occ, info)
    for session in sessions.values():
        rec = Recurrence("heartbeat", session.timezone, every_seconds=session.every_seconds,
                         active_hours=session.active_hours,
                         next_due_at=session.next_due_at if session.enabled else None)  # fmt: skip
        _upcoming(found, "heartbeat", session.session_id, session.owner_id, rec, session.enabled,
                  infos[session.session_id], window, now)  # fmt: skip


def _upcoming(
    found: dict, source: str, ref: str, owner: str, rec: Recurrence, enabled: bool, info: SourceInfo,
    window: Window, now: datetime,
) -> None:  # fmt: skip
    status = "scheduled" if enabled else "disabled"
    for moment in upcoming(rec, max(window.start, now), window.end, MAX_MATERIALISED):
        event_id = event_id_of(source, ref, moment)
        if event_id not in found:  # an occurrence with a run shows its run
            found[event_id] = ((0, 0.0, ""), Occurrence(event_id, moment, status, owner), info)


def _job_info(job: CronJob) -> SourceInfo:
    return SourceInfo(
        "cron", job.job_id, job.owner_id, job.session_id, job.channel, job.title or job.command[:200],
        job.command, job.priority, job.timezone, job.enabled, False, job.every_seconds,
    )  # fmt: skip


def _deleted_job_info(run: CronRun) -> SourceInfo:
    return SourceInfo("cron", run.job_id, run.owner_id, run.session_id, run.channel, run.job_title,
                      enabled=False, deleted=True)  # fmt: skip


def _session_info(session: HeartbeatSession) -> SourceInfo:
    description = f"heartbeat every {session.every_seconds}s" + (
        f" during {session.active_hours}" if session.active_hours else ""
    )
    return SourceInfo(
        "heartbeat", session.session_id, session.owner_id, session.session_id, session.channel,
        f"heartbeat {session.session_id}", description, "normal", session.timezone, session.enabled,
        False, session.every_seconds,
    )  # fmt: skip


def _deleted_session_info(run: HeartbeatRun) -> SourceInfo:
    return SourceInfo("heartbeat", run.session_id, run.owner_id, run.session_id, run.channel,
                      f"heartbeat {run.session_id}", enabled=False, deleted=True)  # fmt: skip


def _pending(owner_id: str | None, source: str) -> list[dict[str, Any]]:
    entries = _owned(StasisEntry.objects.filter(status="pending"), owner_id)
    if source != "all":
        entries = entries.filter(source=source)
    return [snapshots.stasis_snapshot(entry) for entry in entries.order_by("-detected_at", "entry_id")]
