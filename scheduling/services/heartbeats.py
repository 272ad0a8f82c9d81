"""Heartbeat sessions (contract §3): configuration, busy flags, wake requests, system events, and the
claim/finish steps the scheduler loop drives.

Lock order, everywhere: session row, then heartbeat run row, then the event log (every save that emits
an event takes its table lock). Claims skip locked sessions, so a claim never waits on an API write, and
nothing that holds the event log lock waits on a session row: no deadlock cycle.

System events travel with exactly one run: a claim reserves the session's pending events for the run it
starts (`delivered_run_id`), the request carries exactly those, and finishing marks them delivered. A run
that errors or loses its lease releases them, so they go with the next heartbeat instead (at least once).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Min

from scheduling import clock, heartbeat_rules, snapshots
from scheduling.errors import InvalidInput, NotFound
from scheduling.heartbeat_rules import ActiveHours
from scheduling.models import HeartbeatRun, HeartbeatSession, SystemEvent, WakeRequest
from scheduling.schedule import ScheduleError, parse_timezone
from scheduling.targets import default_target

logger = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_SECONDS = 120.0
HEARTBEAT_PROMPT = (
    "Heartbeat check. Read the system events included with this request, if any, and act on anything "
    "that needs attention. If nothing needs attention, reply HEARTBEAT_OK."
)
MAX_OUTPUT_CHARS = 64 * 1024
MAX_SYSTEM_EVENT_CHARS = 8000
WAKE_MODES = ("now", "next")
WAKE_REASONS = {"now": "wake_now", "next": "wake_next"}
_CONFIG_INVALID = {"action": "heartbeat_config_invalid"}


# --- sessions --------------------------------------------------------------------------------------


def get_session(session_id: str, owner_id: str | None) -> HeartbeatSession:
    """The session, if it exists and the caller may see it (owner_id None = operator)."""
    session = _visible(HeartbeatSession.objects.filter(session_id=session_id), owner_id).first()
    if session is None:
        raise NotFound(f"no heartbeat session {session_id}", "session_id")
    return session


def list_sessions(owner_id: str | None) -> list[HeartbeatSession]:
    return list(_visible(HeartbeatSession.objects.all(), owner_id).order_by("session_id"))


def upsert_session(session_id: str, data: Any, owner_id: str | None) -> HeartbeatSession:
    """Create the session or change the given config fields (absent ones keep their values). Validation
    happens before any write; an unchanged config writes nothing and emits no heartbeat_scheduled."""
    if not isinstance(session_id, str) or not session_id.strip() or len(session_id) > 128:
        raise InvalidInput("session_id must be 1 to 128 characters", "session_id")
    try:
        return _upsert(session_id, data, owner_id)
    except IntegrityError:
        # A concurrent PUT created the row first: the second pass updates it instead.
        return _upsert(session_id, data, owner_id)


def _upsert(session_id: str, data: Any, owner_id: str | None) -> HeartbeatSession:
    now = clock.now()
    with transaction.atomic():
        session = HeartbeatSession.objects.select_for_update().filter(session_id=session_id).first()
        if session is not None and owner_id is not None and session.owner_id != owner_id:
            raise NotFound(f"no heartbeat session {session_id}", "session_id")
        if isinstance(data, dict) and data.get("session_id") not in (None, session_id):
            raise InvalidInput("session_id in the body must match the URL", "session_id")
        clean = heartbeat_rules.clean_session_input(data, session, settings.UA_HEARTBEAT_MIN_INTERVAL_SECONDS)
        _enforce_owner(clean, owner_id)
        if session is None:
            session = HeartbeatSession(session_id=session_id, created_at=now, updated_at=now, **clean)
            _arm(session, now)
            session.save(force_insert=True)
            return session
        changed = {name for name, value in clean.items() if getattr(session, name) != value}
        if not changed:
            return session
        for name in changed:
            setattr(session, name, clean[name])
        session.updated_at = now
        if changed & {"every_seconds", "enabled"}:
            _arm(session, now)
        session.save()
    return session


def _arm(session: HeartbeatSession, now: datetime) -> None:
    """First due time after a (re)configuration: one interval from now; a pending `now` wake keeps it
    due at once; a disabled session is never due."""
    if not session.enabled:
        session.next_due_at = None
    elif session.pending_wake == "now":
        session.next_due_at = now
    else:
        session.next_due_at = now + timedelta(seconds=session.every_seconds)


def _enforce_owner(clean: dict, owner_id: str | None) -> None:
    """Owner tokens create and keep sessions under their own owner id only."""
    if owner_id is None:
        return
    if clean.get("owner_id") not in (None, "", owner_id):
        raise InvalidInput("an owner token can only use its own owner id", "owner_id")
    clean["owner_id"] = owner_id


def delete_session(session_id: str, owner_id: str | None) -> str:
    """Delete the session and its system events; its runs stay as history (a running one still finishes)."""
    with transaction.atomic():
        session = _locked(session_id, owner_id)
        SystemEvent.objects.filter(session_id=session_id).delete()
        session.delete()
    return session_id


def set_busy(session_id: str, busy: Any, owner_id: str | None) -> HeartbeatSession:
    """Mark the session busy or idle. Going idle while a heartbeat waits on busy makes it due now."""
    if not isinstance(busy, bool):
        raise InvalidInput("busy must be true or false", "busy")
    now = clock.now()
    with transaction.atomic():
        session = _locked(session_id, owner_id)
        if session.busy == busy:
            return session
        session.busy = busy
        if not busy and session.enabled and _waiting_on_busy(session_id):
            session.next_due_at = min(session.next_due_at or now, now)
        # Bookkeeping fields only: being busy is not a schedule change (no heartbeat_scheduled).
        session.save(update_fields=["busy", "next_due_at"])
    return session


def _waiting_on_busy(session_id: str) -> bool:
    # A missed record can share its claim's timestamp with the busy skip that followed it: look past it.
    last = (
        HeartbeatRun.objects.filter(session_id=session_id)
        .exclude(status="missed")
        .order_by("-created_at")
        .first()
    )
    return last is not None and last.status == "skipped" and last.reason == "busy"


# --- wakes and system events -----------------------------------------------------------------------


def request_wake(session_id: str | None, mode: Any, reason: Any, owner_id: str | None) -> list[str]:
    """Record a wake request per session and coalesce it into the session's one pending wake: `now`
    makes the heartbeat due at once; `next` rides with the next scheduled one and never moves it earlier.
    Without a session id, every enabled session the caller can see is woken."""
    if mode not in WAKE_MODES:
        raise InvalidInput("mode must be 'now' or 'next'", "mode")
    reason = "" if reason is None else reason
    if not isinstance(reason, str) or len(reason) > 200:
        raise InvalidInput("reason must be a string of at most 200 characters", "reason")
    if session_id is not None and not isinstance(session_id, str):
        raise InvalidInput("session_id must be a string", "session_id")
    now = clock.now()
    with transaction.atomic():
        if session_id:
            sessions = [_locked(session_id, owner_id)]
        else:
            queryset = HeartbeatSession.objects.select_for_update().filter(enabled=True)
            # Locked in primary-key order so two wake-alls queue behind each other instead of deadlocking.
            sessions = list(_visible(queryset, owner_id).order_by("session_id"))
        for session in sessions:
            _coalesce_wake(session, mode, now)
            wake = WakeRequest(session_id=session.session_id, owner_id=session.owner_id, requested_at=now)
            wake.mode, wake.reason = mode, reason
            wake.save(force_insert=True)
    return [session.session_id for session in sessions]


def _coalesce_wake(session: HeartbeatSession, mode: str, now: datetime) -> None:
    if mode == "now":
        session.pending_wake = "now"
        if session.enabled:
            session.next_due_at = min(session.next_due_at or now, now)
    elif session.pending_wake != "now":
        session.pending_wake = "next"
    session.save(update_fields=["pending_wake", "next_due_at"])


def add_system_event(session_id: Any, text: Any, owner_id: str | None) -> SystemEvent:
    """Queue text for the session's next heartbeat."""
    if not isinstance(session_id, str) or not session_id:
        raise InvalidInput("session_id is required", "session_id")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text is required", "text")
    if len(text) > MAX_SYSTEM_EVENT_CHARS:
        raise InvalidInput(f"text is limited to {MAX_SYSTEM_EVENT_CHARS} characters", "text")
    with transaction.atomic():
        session = get_session(session_id, owner_id)
        event = SystemEvent(
            session_id=session_id, owner_id=session.owner_id, text=text, created_at=clock.now()
        )
        event.save(force_insert=True)
    return event


def list_system_events(session_id: str | None, owner_id: str | None, limit: int) -> list[SystemEvent]:
    """Pending and delivered system events, newest first."""
    queryset = _visible(SystemEvent.objects.all(), owner_id)
    if session_id:
        get_session(session_id, owner_id)
        queryset = queryset.filter(session_id=session_id)
    return list(queryset.order_by("-created_at", "-id")[:limit])


def last_heartbeat(session_id: str, owner_id: str | None) -> dict[str, Any]:
    session = get_session(session_id, owner_id)
    # The run started in the same claim as a missed record sorts first: it has a started_at.
    last = (
        HeartbeatRun.objects.filter(session_id=session_id)
        .order_by(F("created_at").desc(), F("started_at").desc(nulls_last=True))
        .first()
    )
    return {
        "session_id": session.session_id,
        "last_run": snapshots.heartbeat_run_snapshot(last) if last else None,
        "last_summary": session.last_summary,
        "busy": session.busy,
        "pending_wake": session.pending_wake or None,
        "next_due_at_utc": clock.iso(session.next_due_at),
    }


# --- the scheduler's steps -------------------------------------------------------------------------


def next_heartbeat_due() -> datetime | None:
    """When the earliest enabled session is due (the loop sleeps until then)."""
    return HeartbeatSession.objects.filter(enabled=True).aggregate(due=Min("next_due_at"))["due"]


def claim_due_heartbeats(
    now: datetime, worker_id: str, lease_seconds: int, limit: int = 100
) -> list[HeartbeatRun]:
    """Start every due heartbeat (recording misses and skips on the way); returns the running runs.
    Every claimed session leaves with its next tick armed, so a heartbeat is never lost."""
    with transaction.atomic():
        # skip_locked: concurrent schedulers take disjoint sessions, so no heartbeat runs twice; a
        # session locked by an API write is simply picked up on the next tick.
        sessions = list(
            HeartbeatSession.objects.select_for_update(skip_locked=True)
            .filter(enabled=True, next_due_at__lte=now)
            .order_by("next_due_at")[:limit]
        )
        running = set(
            HeartbeatRun.objects.filter(
                session_id__in=[s.session_id for s in sessions], status="running"
            ).values_list("session_id", flat=True)
        )
        started = [
            _claim_one(session, now, worker_id, lease_seconds, session.session_id in running)
            for session in sessions
        ]
    return [run for run in started if run is not None]


def _claim_one(
    session: HeartbeatSession, now: datetime, worker_id: str, lease_seconds: int, overlapping: bool
) -> HeartbeatRun | None:
    wake_now = session.pending_wake == "now"
    reason = WAKE_REASONS.get(session.pending_wake, "interval")
    occurrence = session.next_due_at
    if not wake_now and now - occurrence > timedelta(seconds=settings.UA_MISFIRE_GRACE_SECONDS):
        _record(session, "missed", reason, occurrence, now)
        occurrence = now  # what follows is a catch-up: its own occurrence, not the missed one's
    if session.busy or overlapping:
        # A heartbeat still running from the last tick makes the session busy too: never two at once.
        _record(session, "skipped", "busy" if session.busy else "running", occurrence, now)
        return _rearm(session, now + timedelta(seconds=settings.UA_HEARTBEAT_BUSY_RETRY_SECONDS))
    hours, tz = _active_hours(session)
    if not wake_now and not heartbeat_rules.in_active_hours(hours, tz, now):
        _record(session, "skipped", "outside_active_hours", occurrence, now)
        next_interval = now + timedelta(seconds=session.every_seconds)
        return _rearm(session, max(next_interval, heartbeat_rules.next_active_start(hours, tz, now)))
    run = _new_run(session, reason, scheduled_at=occurrence, now=now)
    run.status, run.started_at = "running", now
    run.lease_owner, run.lease_expires_at = worker_id, now + timedelta(seconds=lease_seconds)
    run.save(force_insert=True)
    SystemEvent.objects.filter(
        session_id=session.session_id, delivered_at__isnull=True, delivered_run_id=""
    ).update(delivered_run_id=run.run_id)
    WakeRequest.objects.filter(session_id=session.session_id, consumed_at__isnull=True).update(
        consumed_at=now
    )
    session.pending_wake = ""
    session.last_run_at = now
    # Armed at the start, not the finish: the next tick exists even if this run dies with its scheduler.
    session.next_due_at = now + timedelta(seconds=session.every_seconds)
    session.save(update_fields=["pending_wake", "last_run_at", "next_due_at"])
    return run


def _new_run(session: HeartbeatSession, reason: str, scheduled_at: datetime, now: datetime) -> HeartbeatRun:
    return HeartbeatRun(
        session_id=session.session_id,
        owner_id=session.owner_id,
        channel=session.channel,
        reason=reason,
        scheduled_at=scheduled_at,
        created_at=now,
    )


def _record(session: HeartbeatSession, status: str, reason: str, due: datetime, now: datetime) -> None:
    """A heartbeat that did not start: created in its final status, so it emits one event."""
    run = _new_run(session, reason, scheduled_at=due, now=now)
    run.status, run.finished_at = status, now
    run.save(force_insert=True)


def _rearm(session: HeartbeatSession, due: datetime) -> None:
    """Arm the next tick of a heartbeat that did not start (returns None: no run to dispatch)."""
    session.next_due_at = due
    session.save(update_fields=["next_due_at"])


def _active_hours(session: HeartbeatSession) -> tuple[ActiveHours | None, ZoneInfo]:
    """The session's window and zone. Stored values were validated on the way in; one edited into
    something invalid (admin, shell) means always/UTC rather than a claim that fails for every session."""
    try:
        return heartbeat_rules.parse_active_hours(session.active_hours), parse_timezone(session.timezone)
    except ScheduleError as error:
        logger.warning("bad heartbeat config %s: %s", session.session_id, error, extra=_CONFIG_INVALID)
        return None, parse_timezone("UTC")


def build_heartbeat_request(run: HeartbeatRun) -> tuple[dict, dict, float]:
    """(target, JSON body, timeout seconds) for dispatching a running heartbeat."""
    session = HeartbeatSession.objects.filter(session_id=run.session_id).first()
    target = (session.target if session else None) or default_target()
    events = SystemEvent.objects.filter(delivered_run_id=run.run_id).order_by("created_at", "id")
    snapshot = snapshots.heartbeat_run_snapshot(run)
    body = {
        "run_id": run.run_id,
        "session_id": run.session_id,
        "kind": "heartbeat",
        "command": HEARTBEAT_PROMPT,
        "system_events": [
            {"id": event.id, "text": event.text, "created_at_utc": clock.iso(event.created_at)}
            for event in events
        ],
        "scheduled_at": snapshot["scheduled_at"],
        "occurrence_id": snapshot["occurrence_id"],
        "metadata": {
            "owner_id": run.owner_id,
            "channel": run.channel or None,
            "reason": run.reason,
            "delivery": session.delivery if session else None,
        },
    }
    return target, body, HEARTBEAT_TIMEOUT_SECONDS


def finish_heartbeat(run_id: str, status: str, output: str, error: str, now: datetime) -> HeartbeatRun:
    """Record a heartbeat's outcome, settle its system events and store the session's last_summary.
    A run that is no longer running (finished already, e.g. by a lease sweep) is returned unchanged."""
    if status not in ("success", "error"):
        raise InvalidInput("status must be 'success' or 'error'", "status")
    with transaction.atomic():
        session_id = HeartbeatRun.objects.filter(run_id=run_id).values_list("session_id", flat=True).first()
        if session_id is None:
            raise NotFound(f"no heartbeat run {run_id}", "run_id")
        # Session before run: the lock order claims use (see the module docstring).
        session = HeartbeatSession.objects.select_for_update().filter(session_id=session_id).first()
        run = HeartbeatRun.objects.select_for_update().get(run_id=run_id)
        if run.status != "running":
            return run
        output, error = (output or "")[:MAX_OUTPUT_CHARS], (error or "")[:MAX_OUTPUT_CHARS]
        if status == "error" and not error:
            error = "target reported an error"
        run.status, run.finished_at, run.output, run.error = status, now, output, error
        run.lease_owner, run.lease_expires_at = "", None
        run.ok_only = status == "success" and heartbeat_rules.is_ok_only(output)
        run.save()
        _settle_system_events(run, delivered=status == "success", now=now)
        if session is not None:
            _store_summary(session, run, output if status == "success" else error, now)
    return run


def _settle_system_events(run: HeartbeatRun, delivered: bool, now: datetime) -> None:
    reserved = SystemEvent.objects.filter(delivered_run_id=run.run_id, delivered_at__isnull=True)
    if delivered:
        reserved.update(delivered_at=now)
    else:
        reserved.update(delivered_run_id="")


def _store_summary(session: HeartbeatSession, run: HeartbeatRun, text: str, now: datetime) -> None:
    summary, digest = heartbeat_rules.summarise_reply(run.ok_only, text, session=session, now=now)
    session.last_summary = {**summary, "run_id": run.run_id, "status": run.status}
    fields = ["last_summary"]
    if summary["sent"] and not run.ok_only:
        session.last_alert_digest, session.last_alert_at = digest, now
        fields += ["last_alert_digest", "last_alert_at"]
    session.save(update_fields=fields)


def expire_heartbeat_leases(now: datetime) -> int:
    """Fail running heartbeats whose scheduler stopped renewing them; returns how many."""
    with transaction.atomic():
        # skip_locked: a run locked here is being finished right now by its own scheduler.
        runs = list(
            HeartbeatRun.objects.select_for_update(skip_locked=True).filter(
                status="running", lease_expires_at__lt=now
            )
        )
        for run in runs:
            run.status, run.finished_at, run.error = "error", now, "scheduler lost"
            run.lease_owner, run.lease_expires_at = "", None
            run.save()
            _settle_system_events(run, delivered=False, now=now)
    return len(runs)


# --- scoping ---------------------------------------------------------------------------------------


def _visible(queryset: Any, owner_id: str | None) -> Any:
    return queryset if owner_id is None else queryset.filter(owner_id=owner_id)


def _locked(session_id: str, owner_id: str | None) -> HeartbeatSession:
    session = _visible(HeartbeatSession.objects.select_for_update().filter(session_id=session_id), owner_id)
    found = session.first()
    if found is None:
        raise NotFound(f"no heartbeat session {session_id}", "session_id")
    return found
