"""Heartbeat sessions (contract §3): configuration, busy flags, wake requests and system events. The
scheduler's claim/finish steps are in `heartbeat_runs`.
Lock order and how system events travel with runs: see `heartbeat_runs`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from scheduling import clock, heartbeat_rules, snapshots
from scheduling.errors import Conflict, InvalidInput, NotFound
from scheduling.models import HeartbeatRun, HeartbeatSession, SystemEvent, WakeRequest
from scheduling.pages import DEFAULT_LIMIT, Page, page_of
from scheduling.read_snapshot import snapshot_read

logger = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_SECONDS = 120.0
HEARTBEAT_PROMPT = (
    "Heartbeat check. Read the system events included with this request, if any, and act on anything "
    "that needs attention. If nothing needs attention, reply HEARTBEAT_OK."
)
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


def list_sessions(owner_id: str | None, limit: int = DEFAULT_LIMIT, offset: int = 0) -> Page:
    return page_of(_visible(HeartbeatSession.objects.all(), owner_id).order_by("session_id"), limit, offset)


def upsert_session(session_id: str, data: Any, owner_id: str | None) -> HeartbeatSession:
    """Create the session or change the given config fields (absent ones keep their values). Validation
    happens before any write; an unchanged config writes nothing and emits no heartbeat_scheduled."""
    session_id = _checked_session_id(session_id)
    try:
        return _upsert(session_id, data, owner_id)
    except IntegrityError:
        # A concurrent PUT created the row first: the second pass updates it instead.
        return _upsert(session_id, data, owner_id)


def validate_session_input(data: Any, existing: HeartbeatSession | None) -> None:
    """Raise InvalidInput as an upsert of `data` would, writing nothing (the admin form's check)."""
    heartbeat_rules.clean_session_input(data, existing, settings.UA_HEARTBEAT_MIN_INTERVAL_SECONDS)


def create_session(data: Any, owner_id: str | None) -> HeartbeatSession:
    """Create the session named by `data["session_id"]`; one that exists already is a conflict (even one
    the caller cannot see: session ids are global, so it could not be created anyway)."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    session_id = data.get("session_id")
    session_id = _checked_session_id(session_id)
    try:
        return _upsert(session_id, data, owner_id, create_only=True)
    except IntegrityError as error:
        # A concurrent create committed the row between our check and our insert.
        raise Conflict(f"heartbeat session {session_id} exists", "session_id") from error


def _checked_session_id(session_id: Any) -> str:
    if not isinstance(session_id, str) or not session_id.strip() or len(session_id) > 128:
        raise InvalidInput("session_id must be 1 to 128 characters", "session_id")
    return session_id


def _upsert(session_id: str, data: Any, owner_id: str | None, create_only: bool = False) -> HeartbeatSession:
    now = clock.now()
    with transaction.atomic():
        session = HeartbeatSession.objects.select_for_update().filter(session_id=session_id).first()
        if session is not None and create_only:
            raise Conflict(f"heartbeat session {session_id} exists", "session_id")
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
    if session_id:
        with transaction.atomic():
            session = _locked(session_id, owner_id)
            _wake(session, mode, reason, now)
        return [session.session_id]
    return _wake_every_session(mode, reason, owner_id, now)


# Sessions woken per transaction by a wake without a session id: a short lock and a bounded list each.
WAKE_BATCH = 200


def _wake_every_session(mode: str, reason: str, owner_id: str | None, now: datetime) -> list[str]:
    """Wake every enabled session the caller sees, a batch per transaction in session id order (so two
    wake-alls queue behind each other instead of deadlocking). A session created meanwhile may or may not
    be woken, as with any request that races a create."""
    woken: list[str] = []
    after = ""
    while True:
        with transaction.atomic():
            queryset = HeartbeatSession.objects.select_for_update().filter(enabled=True, session_id__gt=after)
            batch = list(_visible(queryset, owner_id).order_by("session_id")[:WAKE_BATCH])
            for session in batch:
                _wake(session, mode, reason, now)
        woken += [session.session_id for session in batch]
        if len(batch) < WAKE_BATCH:
            return woken
        after = batch[-1].session_id


def _wake(session: HeartbeatSession, mode: str, reason: str, now: datetime) -> None:
    _coalesce_wake(session, mode, now)
    wake = WakeRequest(session_id=session.session_id, owner_id=session.owner_id, requested_at=now)
    wake.mode, wake.reason = mode, reason
    wake.save(force_insert=True)


def _coalesce_wake(session: HeartbeatSession, mode: str, now: datetime) -> None:
    if mode == "now":
        session.pending_wake = "now"
        if session.enabled:
            session.next_due_at = min(session.next_due_at or now, now)
    elif session.pending_wake != "now":
        session.pending_wake = "next"
    session.save(update_fields=["pending_wake", "next_due_at"])


def system_event_text(data: dict[str, Any]) -> Any:
    """The event's text: `text`, or V1-style `payload.text` (contract §3). Validated by add_system_event."""
    if data.get("text") is not None or "payload" not in data:
        return data.get("text")
    payload = data["payload"]
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be an object (its text goes in payload.text)", "payload")
    return payload.get("text")


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


def list_system_events(
    session_id: str | None, owner_id: str | None, limit: int = DEFAULT_LIMIT, offset: int = 0
) -> Page:
    """Pending and delivered system events, newest first."""
    queryset = _visible(SystemEvent.objects.all(), owner_id)
    if session_id:
        get_session(session_id, owner_id)
        queryset = queryset.filter(session_id=session_id)
    return page_of(queryset.order_by("-created_at", "-id"), limit, offset)


def last_heartbeat(session_id: str, owner_id: str | None) -> dict[str, Any]:
    # One snapshot: the run and the summary stored with its finish are read as of the same moment.
    with snapshot_read():
        session = get_session(session_id, owner_id)  # 404 for sessions the caller may not see
        # The run started in the same claim as a missed record sorts first: it has a started_at.
        last = (
            snapshots.preview_only(HeartbeatRun.objects.filter(session_id=session_id))
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


# --- scoping ---------------------------------------------------------------------------------------


def _visible(queryset: Any, owner_id: str | None) -> Any:
    return queryset if owner_id is None else queryset.filter(owner_id=owner_id)


def _locked(session_id: str, owner_id: str | None) -> HeartbeatSession:
    session = _visible(HeartbeatSession.objects.select_for_update().filter(session_id=session_id), owner_id)
    found = session.first()
    if found is None:
        raise NotFound(f"no heartbeat session {session_id}", "session_id")
    return found
