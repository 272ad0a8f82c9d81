"""Calendar actions (contract §7): what an operator can do to one calendar event, by its event id
`source|source_ref|<int epoch>`. Each action maps the event to its job or heartbeat session (and, for the
stasis actions, to the occurrence's pending stasis entry) and calls the service that owns the change, so
the calendar, the admin and the API change things the same way.

Stasis actions need the event's *pending* entry: one already resolved answers 409 (resolved entries never
resurface), an event whose job or session the caller cannot see answers 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scheduling import clock, schedule
from scheduling.errors import Conflict, InvalidInput
from scheduling.models import (
    CronJob,
    CronRun,
    HeartbeatSession,
    RunReason,
    StasisEntry,
    StasisStatus,
)
from scheduling.services import heartbeats, jobs, runs, stasis

STASIS_ACTIONS = ("approve_backfill_run", "reschedule", "delete_missed")
ACTIONS = (*STASIS_ACTIONS, "run_now", "pause", "resume", "disable")
SOURCES = ("cron", "heartbeat")
_EPOCH = re.compile(r"-?\d{1,12}")


@dataclass(frozen=True)
class EventRef:
    """A parsed calendar event id."""

    source: str
    source_ref: str
    epoch: int

    @property
    def event_id(self) -> str:
        return f"{self.source}|{self.source_ref}|{self.epoch}"


@dataclass
class ActionResult:
    action: str
    event_id: str
    entry: StasisEntry | None = None
    job: CronJob | None = None
    run: CronRun | None = None
    session: HeartbeatSession | None = None


def parse_event_id(event_id: Any) -> EventRef:
    """`cron|job_abc|1767225600` → EventRef; anything else is a 400 naming `event_id`."""
    if isinstance(event_id, str) and len(event_id) <= 300:
        source, _, rest = event_id.partition("|")
        # rpartition: a session id may itself hold "|", the epoch never does.
        source_ref, separator, epoch = rest.rpartition("|")
        if source in SOURCES and separator and source_ref and _EPOCH.fullmatch(epoch):
            return EventRef(source, source_ref, int(epoch))
    raise InvalidInput(
        "event_id must look like 'cron|<job_id>|<epoch seconds>' or 'heartbeat|<session_id>|<epoch>'",
        "event_id",
    )


def clean_action(data: Any) -> tuple[str, Any, str | None]:
    """(action, run_at, timezone) from an action body; every problem is a 400 naming its field."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    action = data.get("action")
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}", "action")
    timezone, run_at = data.get("timezone"), data.get("run_at")
    if timezone is not None and not isinstance(timezone, str):
        raise InvalidInput("timezone must be an IANA time zone name", "timezone")
    try:
        schedule.parse_timezone(timezone)
        if action == "reschedule" and run_at not in (None, ""):
            # Shape only, before anything is looked up or written (the job's zone applies later).
            schedule.parse_run_at(run_at, timezone or "UTC", clock.now())
    except schedule.ScheduleError as error:
        raise InvalidInput(error.detail, error.field) from None
    return action, run_at, timezone or None


def perform_action(event_id: str, data: Any, owner_id: str | None) -> ActionResult:
    """Validate, then apply one calendar action through the owning service."""
    ref = parse_event_id(event_id)
    action, run_at, timezone = clean_action(data)
    return apply_action(ref, action, run_at, timezone, owner_id)


def apply_action(
    ref: EventRef, action: str, run_at: Any, timezone: str | None, owner_id: str | None
) -> ActionResult:
    result = ActionResult(action=action, event_id=ref.event_id)
    if action in STASIS_ACTIONS:
        _stasis_action(ref, result, run_at, timezone, owner_id)
    elif ref.source == "cron":
        _job_action(ref, result, owner_id)
    else:
        _session_action(ref, result, owner_id)
    return result


def pending_entry(ref: EventRef, owner_id: str | None) -> StasisEntry:
    """The event's pending stasis entry. 404 if the caller can see neither the entry nor its job or
    session; 409 if the entry is resolved or the occurrence never entered stasis."""
    visible = StasisEntry.objects.filter(source=ref.source, source_ref=ref.source_ref, event_id=ref.event_id)
    if owner_id is not None:
        visible = visible.filter(owner_id=owner_id)
    pending = visible.filter(status=StasisStatus.PENDING).first()
    if pending is not None:
        return pending
    latest = visible.order_by("-detected_at").first()
    if latest is None:
        require_visible_target(ref, owner_id)
        raise Conflict(f"{ref.event_id} has no pending stasis entry (it was not missed)", "event_id")
    raise Conflict(f"the stasis entry of {ref.event_id} is already {latest.status}", "event_id")


def _stasis_action(
    ref: EventRef, result: ActionResult, run_at: Any, timezone: str | None, owner_id: str | None
) -> None:
    entry = pending_entry(ref, owner_id)
    if result.action == "delete_missed":
        stasis.delete_missed(entry.entry_id, owner_id)
    elif ref.source == "heartbeat":
        # Heartbeats are never backfilled: the next heartbeat covers a missed one (contract §3).
        raise InvalidInput("a missed heartbeat is not backfilled; use run_now or delete_missed", "action")
    elif result.action == "approve_backfill_run":
        result.run = stasis.approve_backfill_run(entry.entry_id, owner_id)
    else:
        result.job = stasis.reschedule(entry.entry_id, run_at, timezone, owner_id)
    result.entry = StasisEntry.objects.get(entry_id=entry.entry_id)


def _job_action(ref: EventRef, result: ActionResult, owner_id: str | None) -> None:
    if result.action == "run_now":
        result.run = runs.queue_manual_run(ref.source_ref, owner_id, reason=RunReason.CALENDAR_ACTION)
    else:
        # pause and disable both stop the job (as in V1); resume re-arms it from now.
        enabled = result.action == "resume"
        result.job = jobs.update_job(ref.source_ref, {"enabled": enabled}, owner_id, partial=True)


def _session_action(ref: EventRef, result: ActionResult, owner_id: str | None) -> None:
    heartbeats.get_session(ref.source_ref, owner_id)  # 404 first: upsert would create a missing session
    if result.action == "run_now":
        heartbeats.request_wake(ref.source_ref, "now", "calendar_action", owner_id)
        result.session = heartbeats.get_session(ref.source_ref, owner_id)
    else:
        enabled = result.action == "resume"
        result.session = heartbeats.upsert_session(ref.source_ref, {"enabled": enabled}, owner_id)


def require_visible_target(ref: EventRef, owner_id: str | None) -> CronJob | HeartbeatSession:
    """The event's job or session (404 if the caller cannot see it)."""
    if ref.source == "cron":
        return jobs.get_job(ref.source_ref, owner_id)
    return heartbeats.get_session(ref.source_ref, owner_id)
