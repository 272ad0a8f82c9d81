"""Every committed change to a domain row appends its lifecycle event in the same transaction.

Receivers run inside the atomic block opened by `RecordedModel.save()/delete()`, so whichever door the
change came through (services, admin, shell, a command) the event exists if and only if the change
committed. Bulk writes that bypass signals go through services that append with `event_log.append_events`.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from scheduling import snapshots
from scheduling.event_log import EventDraft, append_event
from scheduling.models import (
    CronJob,
    CronRun,
    HeartbeatRun,
    HeartbeatSession,
    StasisEntry,
    StasisStatus,
    WakeRequest,
)

# Saves that only touch scheduler bookkeeping are not lifecycle changes of the job or session.
JOB_BOOKKEEPING_FIELDS = frozenset({"next_run_at", "last_run_at", "updated_at"})
SESSION_BOOKKEEPING_FIELDS = frozenset(
    {
        "next_due_at",
        "last_run_at",
        "last_summary",
        "pending_wake",
        "last_alert_digest",
        "last_alert_at",
        "busy",
        "updated_at",
    }
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


def record(instance: Any, draft: EventDraft) -> None:
    """Append the event and note it on the instance: its save then needs no separate wake-up notice."""
    append_event(draft)
    instance._event_appended = True


def _only_bookkeeping(update_fields: Any, bookkeeping: frozenset[str]) -> bool:
    return update_fields is not None and set(update_fields) <= bookkeeping


def _status_transition(instance: Any, created: bool) -> str | None:
    """The new status if this save changed it, else None; remembers it for the next save."""
    previous = None if created else getattr(instance, "_loaded_status", None)
    instance._loaded_status = instance.status
    return instance.status if instance.status != previous else None


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


@receiver(post_save, sender=CronJob, dispatch_uid="cron_job_saved")
def cron_job_saved(sender: type, instance: CronJob, created: bool, update_fields: Any, **kw: Any) -> None:
    if not created and _only_bookkeeping(update_fields, JOB_BOOKKEEPING_FIELDS):
        return
    record(instance, job_event(instance, "cron_job_created" if created else "cron_job_updated"))


@receiver(post_delete, sender=CronJob, dispatch_uid="cron_job_deleted")
def cron_job_deleted(sender: type, instance: CronJob, **kw: Any) -> None:
    draft = job_event(instance, "cron_job_deleted")
    draft.status = "deleted"
    record(instance, draft)


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
    """The event a run's current status emits (for bulk writes, which bypass the receivers below)."""
    return cron_run_event(run, CRON_RUN_EVENT_BY_STATUS[run.status])


@receiver(post_save, sender=CronRun, dispatch_uid="cron_run_saved")
def cron_run_saved(sender: type, instance: CronRun, created: bool, **kw: Any) -> None:
    new_status = _status_transition(instance, created)
    event_type = CRON_RUN_EVENT_BY_STATUS.get(new_status or "")
    if event_type:
        record(instance, cron_run_event(instance, event_type))


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


@receiver(post_save, sender=HeartbeatSession, dispatch_uid="heartbeat_session_saved")
def heartbeat_session_saved(
    sender: type, instance: HeartbeatSession, created: bool, update_fields: Any, **kw: Any
) -> None:
    if not created and _only_bookkeeping(update_fields, SESSION_BOOKKEEPING_FIELDS):
        return
    status = "enabled" if instance.enabled else "disabled"
    record(instance, session_event(instance, "heartbeat_scheduled", status))


@receiver(post_delete, sender=HeartbeatSession, dispatch_uid="heartbeat_session_deleted")
def heartbeat_session_deleted(sender: type, instance: HeartbeatSession, **kw: Any) -> None:
    # The contract has no heartbeat_deleted type: a schedule change to "deleted" says the same thing.
    record(instance, session_event(instance, "heartbeat_scheduled", "deleted"))


@receiver(post_save, sender=HeartbeatRun, dispatch_uid="heartbeat_run_saved")
def heartbeat_run_saved(sender: type, instance: HeartbeatRun, created: bool, **kw: Any) -> None:
    new_status = _status_transition(instance, created)
    event_type = HEARTBEAT_RUN_EVENT_BY_STATUS.get(new_status or "")
    if not event_type:
        return
    record(
        instance,
        EventDraft(
            event_type=event_type,
            source="heartbeat",
            source_ref=instance.session_id,
            owner_id=instance.owner_id,
            session_id=instance.session_id,
            channel=instance.channel,
            status=instance.status,
            payload={
                "run_id": instance.run_id,
                "session_id": instance.session_id,
                # Contract §3 names `payload.reason` (busy, outside_active_hours, wake_now, interval, ...).
                "reason": instance.reason,
                "run": snapshots.heartbeat_run_snapshot(instance),
            },
        ),
    )


@receiver(post_save, sender=WakeRequest, dispatch_uid="wake_request_saved")
def wake_request_saved(sender: type, instance: WakeRequest, created: bool, **kw: Any) -> None:
    if not created:
        return
    record(
        instance,
        EventDraft(
            event_type="heartbeat_wake_requested",
            source="heartbeat",
            source_ref=instance.session_id,
            owner_id=instance.owner_id,
            session_id=instance.session_id,
            status=instance.mode,
            payload={"session_id": instance.session_id, "mode": instance.mode, "reason": instance.reason},
        ),
    )


@receiver(post_save, sender=StasisEntry, dispatch_uid="stasis_entry_saved")
def stasis_entry_saved(sender: type, instance: StasisEntry, created: bool, **kw: Any) -> None:
    new_status = _status_transition(instance, created)
    if new_status is None:
        return
    event_type = "stasis_entry_created" if new_status == StasisStatus.PENDING else "stasis_entry_resolved"
    record(
        instance,
        EventDraft(
            event_type=event_type,
            source=instance.source,
            source_ref=instance.source_ref,
            owner_id=instance.owner_id,
            session_id=instance.session_id,
            channel=instance.channel,
            status=instance.status,
            payload={"entry_id": instance.entry_id, "entry": snapshots.stasis_snapshot(instance)},
        ),
    )
