"""The scheduler's heartbeat steps: claim due heartbeats, build their requests, finish them, expire lost
leases. Session configuration, wakes and system events are in `heartbeats`.

Lock order, everywhere: session rows (in key order), then heartbeat run rows, then the event log (every
save that emits an event takes its table lock, held to commit). Claims, finishes and lease expiry all
take the session first (expiry finds its runs unlocked, locks their sessions, then re-reads the runs
under lock); claims skip locked sessions, so a claim never waits on an API write, and nothing that holds
the event log lock waits on a session row: no deadlock cycle. tests/integration/test_lock_order.py drives
the expiry/finish interleaving. The whole order is in docs/architecture.md ("Lock discipline").

System events travel with exactly one run: a claim reserves the session's pending events for the run it
starts (`delivered_run_id`), the request carries exactly those, and finishing marks them delivered. A run
that errors or loses its lease releases them, so they go with the next heartbeat instead (at least once).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TypeGuard
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import F

from scheduling import clock, heartbeat_rules, snapshots
from scheduling.dispatch import MAX_OUTPUT_CHARS
from scheduling.errors import InvalidInput, NotFound
from scheduling.heartbeat_rules import ActiveHours
from scheduling.models import HeartbeatRun, HeartbeatSession, SystemEvent, WakeRequest
from scheduling.schedule import ScheduleError, parse_timezone
from scheduling.services.claims import record_due_lag
from scheduling.services.heartbeats import (
    _CONFIG_INVALID,
    HEARTBEAT_PROMPT,
    HEARTBEAT_TIMEOUT_SECONDS,
    WAKE_REASONS,
)
from scheduling.targets import default_target

logger = logging.getLogger(__name__)

SkipRow = tuple[str, str, str, int]  # run_id, status, reason, skip_count


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
        # Stamped after the overlap check read the runs (and under the session locks that finishes take
        # first): see clock.now_under_lock.
        now = clock.now_under_lock(now)
        started = [
            _claim_one(session, now, worker_id, lease_seconds, session.session_id in running)
            for session in sessions
        ]
        record_due_lag(
            [(run.started_at, run.scheduled_at) for run in started if run and run.reason == "interval"]
        )
    return [run for run in started if run is not None]


def _claim_one(
    session: HeartbeatSession, now: datetime, worker_id: str, lease_seconds: int, overlapping: bool
) -> HeartbeatRun | None:
    wake_now = session.pending_wake == "now"
    reason = WAKE_REASONS.get(session.pending_wake, "interval")
    occurrence = session.next_due_at
    if occurrence is None:  # the claim query selects due sessions only
        raise ValueError(f"heartbeat session {session.session_id} has no next_due_at to claim")
    if not wake_now and now - occurrence > timedelta(seconds=settings.UA_MISFIRE_GRACE_SECONDS):
        _record(session, "missed", reason, occurrence, now)
        occurrence = now  # what follows is a catch-up: its own occurrence, not the missed one's
    if session.busy or overlapping:
        # A heartbeat still running from the last tick makes the session busy too: never two at once.
        _record_skip(session, "busy" if session.busy else "running", occurrence, now)
        _rearm(session, now + timedelta(seconds=settings.UA_HEARTBEAT_BUSY_RETRY_SECONDS))
        return None
    hours, tz = _active_hours(session)
    if not heartbeat_rules.in_active_hours(hours, tz, now):
        # Wakes included (contract §3): the wake is answered by this skip and consumed; pending system
        # events stay unreserved and go with the first heartbeat inside the window.
        _record_skip(session, "outside_active_hours", occurrence, now)
        _consume_wakes(session, now)
        next_interval = now + timedelta(seconds=session.every_seconds)
        _rearm(session, max(next_interval, heartbeat_rules.next_active_start(hours, tz, now)))
        return None
    run = _new_run(session, reason, scheduled_at=occurrence, now=now)
    run.status, run.started_at = "running", now
    run.lease_owner, run.lease_expires_at = worker_id, now + timedelta(seconds=lease_seconds)
    run.save(force_insert=True)
    SystemEvent.objects.filter(
        session_id=session.session_id, delivered_at__isnull=True, delivered_run_id=""
    ).update(delivered_run_id=run.run_id)
    _consume_wakes(session, now)
    session.last_run_at = now
    # Armed at the start, not the finish: the next tick exists even if this run dies with its scheduler.
    session.next_due_at = now + timedelta(seconds=session.every_seconds)
    session.save(update_fields=["pending_wake", "last_run_at", "next_due_at"])
    return run


def _consume_wakes(session: HeartbeatSession, now: datetime) -> None:
    """Mark the session's wake requests answered; the caller saves `pending_wake`."""
    WakeRequest.objects.filter(session_id=session.session_id, consumed_at__isnull=True).update(
        consumed_at=now
    )
    session.pending_wake = ""


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


def _record_skip(session: HeartbeatSession, reason: str, due: datetime, now: datetime) -> None:
    """Record one skip. A streak of consecutive skips with one reason keeps two rows, its first and its
    newest (which counts the rest in `skip_count`): a session busy for a month would otherwise add a row
    every UA_HEARTBEAT_BUSY_RETRY_SECONDS forever. Each skip still inserts its own row, so it emits its
    own heartbeat_skipped event (contract §3); only the row it supersedes is dropped. Two index probes
    per skip (hb_run_session_recent), however long the history."""
    newest, before = (
        list(
            HeartbeatRun.objects.filter(session_id=session.session_id)
            # A run started at the instant of a skip came from a later claim: it sorts first.
            .order_by(F("created_at").desc(), F("started_at").desc(nulls_last=True))
            .values_list("run_id", "status", "reason", "skip_count")[:2]
        )
        + [None, None]
    )[:2]
    run = _new_run(session, reason, scheduled_at=due, now=now)
    if _same_skip(newest, reason) and _same_skip(before, reason):
        # `newest` is the streak's previous tail (its head is `before` or older): fold it into this one.
        HeartbeatRun.objects.filter(run_id=newest[0]).delete()
        run.skip_count = newest[3] + 1
    run.status, run.finished_at = "skipped", now
    run.save(force_insert=True)


def _same_skip(row: SkipRow | None, reason: str) -> TypeGuard[SkipRow]:
    return row is not None and row[1] == "skipped" and row[2] == reason


def _rearm(session: HeartbeatSession, due: datetime) -> None:
    """Arm the next tick of a heartbeat that did not start (returns None: no run to dispatch)."""
    session.next_due_at = due
    session.save(update_fields=["next_due_at", "pending_wake"])


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
        now = clock.now_under_lock(now)
        output, error = (output or "")[:MAX_OUTPUT_CHARS], (error or "")[:MAX_OUTPUT_CHARS]
        if status == "error" and not error:
            error = "target reported an error"
        run.status, run.finished_at, run.output, run.error = status, now, output, error
        run.lease_owner, run.lease_expires_at = "", None
        run.ok_only = status == "success" and heartbeat_rules.is_ok_only(output)
        run.save()
        _settle_system_events(run, delivered=status == "success", now=now)
        if session is not None:
            _store_summary_safely(session, run, output if status == "success" else error, now)
    return run


def _store_summary_safely(session: HeartbeatSession, run: HeartbeatRun, text: str, now: datetime) -> None:
    """A summary that cannot be computed (a hand-edited delivery or visibility) is logged, never allowed
    to stop the run's outcome from being recorded."""
    try:
        with transaction.atomic():
            _store_summary(session, run, text, now)
    except Exception:
        logger.exception("cannot store the summary of %s", run.run_id, extra=_CONFIG_INVALID)


def fail_heartbeat_plainly(run_id: str, reason: str, now: datetime) -> bool:
    """The last resort: mark a running heartbeat failed (its event included) and nothing else."""
    with transaction.atomic():
        run = HeartbeatRun.objects.select_for_update().filter(run_id=run_id, status="running").first()
        if run is None:
            return False
        run.status, run.finished_at, run.error = "error", clock.now_under_lock(now), reason
        run.lease_owner, run.lease_expires_at = "", None
        run.save()
    return True


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
        # Lock order (module docstring): sessions, then runs. So the lapsed runs are found unlocked, their
        # sessions locked in key order, and only then the runs, re-checked: a finish that held the
        # session first has committed by now, and its run is no longer running.
        session_ids = sorted(
            set(
                HeartbeatRun.objects.filter(status="running", lease_expires_at__lt=now).values_list(
                    "session_id", flat=True
                )
            )
        )
        if not session_ids:
            return 0
        list(
            HeartbeatSession.objects.select_for_update()
            .filter(session_id__in=session_ids)
            .order_by("session_id")
        )
        # skip_locked: a run locked here is being finished right now by its own scheduler.
        runs = list(
            HeartbeatRun.objects.select_for_update(skip_locked=True)
            .filter(session_id__in=session_ids, status="running", lease_expires_at__lt=now)
            .order_by("run_id")
        )
        now = clock.now_under_lock(now)
        for run in runs:
            run.status, run.finished_at, run.error = "error", now, "scheduler lost"
            run.lease_owner, run.lease_expires_at = "", None
            run.save()
            _settle_system_events(run, delivered=False, now=now)
    return len(runs)
