"""The lifecycle event drafts of domain rows (contract §4): which event a change emits, and its envelope.

One module builds every draft, so a change reads the same in the log whichever path wrote it: the signal
receivers (`scheduling.signals`, for single-row saves) and the services' bulk writes that bypass signals
(`claims`, `outcomes`, which append with `event_log.append_events`) both call these builders.
"""

from __future__ import annotations

from scheduling import snapshots
from scheduling.event_log import EventDraft
from scheduling.models import (
    CronJob,
    CronRun,
    HeartbeatRun,
    HeartbeatSession,
    StasisEntry,
    StasisStatus,
    WakeRequest,
)

CRON_RUN_EVENT_BY_STATUS = {
    "running": "cron_run_started",
    "success": "cron_run_completed",
    "skipped": "cron_run_completed",
    "cancelled": "cron_run_completed",
    "error": "cron_run_failed",
    "missed": "cron_run_missed",
}
HEARTBEAT_RUN_EVENT_BY_STATUS = {
    "running": "heartbeat_started",
    "success": "heartbeat_completed",
    "error": "heartbeat_failed",
    "skipped": "heartbeat_skipped",
    "missed": "heartbeat_missed",
}


def job_event(job: CronJob, event_type: str) -> EventDraft:
    return EventDraft(
        event_type=event_type,
        source="cron",
        source_ref=job.job_id,
        owner_id=job.owner_id,
        session_id=job.session_id,
        channel=job.channel,
        status="enabled" if job.enabled else "disabled",
        payload={"job_id": job.job_id, "job": snapshots.job_snapshot(job)},
    )


def job_deleted_event(job: CronJob) -> EventDraft:
    draft = job_event(job, "cron_job_deleted")
    draft.status = "deleted"
    return draft


def cron_run_event(run: CronRun, event_type: str) -> EventDraft:
    return EventDraft(
        event_type=event_type,
        source="cron",
        source_ref=run.job_id,
        owner_id=run.owner_id,
        session_id=run.session_id,
        channel=run.channel,
        status=run.status,
        occurred_at=run.finished_at if event_type != "cron_run_started" else run.started_at,
        payload={"run_id": run.run_id, "job_id": run.job_id, "run": snapshots.run_snapshot(run)},
    )


def status_event(run: CronRun) -> EventDraft:
    """The event a run's current status emits (bulk writes call this; so does the run receiver)."""
    return cron_run_event(run, CRON_RUN_EVENT_BY_STATUS[run.status])


def session_event(session: HeartbeatSession, event_type: str, status: str) -> EventDraft:
    return EventDraft(
        event_type=event_type,
        source="heartbeat",
        source_ref=session.session_id,
        owner_id=session.owner_id,
        session_id=session.session_id,
        channel=session.channel,
        status=status,
        payload={"session_id": session.session_id, "session": snapshots.session_snapshot(session)},
    )


def session_scheduled_event(session: HeartbeatSession) -> EventDraft:
    return session_event(session, "heartbeat_scheduled", "enabled" if session.enabled else "disabled")


def session_deleted_event(session: HeartbeatSession) -> EventDraft:
    # The contract has no heartbeat_deleted type: a schedule change to "deleted" says the same thing.
    return session_event(session, "heartbeat_scheduled", "deleted")


def heartbeat_run_event(run: HeartbeatRun, event_type: str) -> EventDraft:
    return EventDraft(
        event_type=event_type,
        source="heartbeat",
        source_ref=run.session_id,
        owner_id=run.owner_id,
        session_id=run.session_id,
        channel=run.channel,
        status=run.status,
        payload={
            "run_id": run.run_id,
            "session_id": run.session_id,
            # Contract §3 names `payload.reason` (busy, outside_active_hours, wake_now, interval, ...).
            "reason": run.reason,
            "run": snapshots.heartbeat_run_snapshot(run),
        },
    )


def wake_requested_event(wake: WakeRequest) -> EventDraft:
    return EventDraft(
        event_type="heartbeat_wake_requested",
        source="heartbeat",
        source_ref=wake.session_id,
        owner_id=wake.owner_id,
        session_id=wake.session_id,
        status=wake.mode,
        payload={"session_id": wake.session_id, "mode": wake.mode, "reason": wake.reason},
    )


def stasis_entry_event(entry: StasisEntry) -> EventDraft:
    pending = entry.status == StasisStatus.PENDING
    return EventDraft(
        event_type="stasis_entry_created" if pending else "stasis_entry_resolved",
        source=entry.source,
        source_ref=entry.source_ref,
        owner_id=entry.owner_id,
        session_id=entry.session_id,
        channel=entry.channel,
        status=entry.status,
        payload={"entry_id": entry.entry_id, "entry": snapshots.stasis_snapshot(entry)},
    )
