"""Every committed change to a domain row appends its lifecycle event in the same transaction.

Receivers run inside the atomic block opened by `RecordedModel.save()/delete()`, so whichever door the
change came through (services, admin, shell, a command) the event exists if and only if the change
committed. The drafts come from `scheduling.lifecycle`, which the services' bulk writes (bypassing these
receivers) use too. This module holds receivers only; nothing imports it but the app config.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from scheduling import lifecycle
from scheduling.event_log import EventDraft, announce_change, append_event
from scheduling.models import CronJob, CronRun, HeartbeatRun, HeartbeatSession, StasisEntry, WakeRequest
from scheduling.models.base import saved_without_event

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


def _record(instance: Any, draft: EventDraft) -> None:
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


@receiver(saved_without_event, dispatch_uid="wake_schedulers_after_quiet_save")
def wake_schedulers_after_quiet_save(sender: type, instance: Any, **kw: Any) -> None:
    # A save that appended no event (a queued run, a moved due time) must still wake schedulers.
    announce_change()


@receiver(post_save, sender=CronJob, dispatch_uid="cron_job_saved")
def cron_job_saved(sender: type, instance: CronJob, created: bool, update_fields: Any, **kw: Any) -> None:
    if not created and _only_bookkeeping(update_fields, JOB_BOOKKEEPING_FIELDS):
        return
    _record(instance, lifecycle.job_event(instance, "cron_job_created" if created else "cron_job_updated"))


@receiver(post_delete, sender=CronJob, dispatch_uid="cron_job_deleted")
def cron_job_deleted(sender: type, instance: CronJob, **kw: Any) -> None:
    _record(instance, lifecycle.job_deleted_event(instance))


@receiver(post_save, sender=CronRun, dispatch_uid="cron_run_saved")
def cron_run_saved(sender: type, instance: CronRun, created: bool, **kw: Any) -> None:
    new_status = _status_transition(instance, created)
    event_type = lifecycle.CRON_RUN_EVENT_BY_STATUS.get(new_status or "")
    if event_type:
        _record(instance, lifecycle.cron_run_event(instance, event_type))


@receiver(post_save, sender=HeartbeatSession, dispatch_uid="heartbeat_session_saved")
def heartbeat_session_saved(
    sender: type, instance: HeartbeatSession, created: bool, update_fields: Any, **kw: Any
) -> None:
    if not created and _only_bookkeeping(update_fields, SESSION_BOOKKEEPING_FIELDS):
        return
    _record(instance, lifecycle.session_scheduled_event(instance))


@receiver(post_delete, sender=HeartbeatSession, dispatch_uid="heartbeat_session_deleted")
def heartbeat_session_deleted(sender: type, instance: HeartbeatSession, **kw: Any) -> None:
    _record(instance, lifecycle.session_deleted_event(instance))


@receiver(post_save, sender=HeartbeatRun, dispatch_uid="heartbeat_run_saved")
def heartbeat_run_saved(sender: type, instance: HeartbeatRun, created: bool, **kw: Any) -> None:
    new_status = _status_transition(instance, created)
    event_type = lifecycle.HEARTBEAT_RUN_EVENT_BY_STATUS.get(new_status or "")
    if event_type:
        _record(instance, lifecycle.heartbeat_run_event(instance, event_type))


@receiver(post_save, sender=WakeRequest, dispatch_uid="wake_request_saved")
def wake_request_saved(sender: type, instance: WakeRequest, created: bool, **kw: Any) -> None:
    if created:
        _record(instance, lifecycle.wake_requested_event(instance))


@receiver(post_save, sender=StasisEntry, dispatch_uid="stasis_entry_saved")
def stasis_entry_saved(sender: type, instance: StasisEntry, created: bool, **kw: Any) -> None:
    if _status_transition(instance, created) is not None:
        _record(instance, lifecycle.stasis_entry_event(instance))
