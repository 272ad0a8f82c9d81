"""Which future occurrences the calendar shows for a job or heartbeat session: one pure function that both
feed paths use (the projector materialises its result; the scan path calls it per request), so the two
paths cannot disagree about where an occurrence sits.

Rule: an occurrence is shown as upcoming if it is at or after `now` and has no run yet. Past occurrences
appear only through their runs (the runtime records every miss as a `missed` run), so the calendar never
shows a false miss for an occurrence the scheduler is about to claim.

The cron/interval/one-shot arithmetic is `scheduling.schedule`'s, the scheduler's own: an interval job
fires at anchor + k*every with k >= 1 (the anchor is the moment its schedule was set, not a fire time).
Heartbeats step from the session's next due time by its interval, and a step that lands outside the
active hours moves to the later of one interval on and the window's next opening, as the scheduler does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduling import heartbeat_rules, schedule
from scheduling.schedule import ScheduleError

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Recurrence:
    kind: str  # at | cron | every | heartbeat | "" (unknown: no occurrences)
    timezone: str = "UTC"
    cron_expr: str = ""
    every_seconds: int | None = None
    run_at: datetime | None = None
    anchor_at: datetime | None = None
    active_hours: str = ""
    next_due_at: datetime | None = None


def upcoming(rec: Recurrence, start: datetime, until: datetime, limit: int) -> list[datetime]:
    """Occurrences in [start, until), ascending, at most `limit`. A definition that cannot be evaluated
    (a hand-edited row) has none rather than breaking the whole calendar."""
    if until <= start or limit <= 0:
        return []
    try:
        if rec.kind == "heartbeat":
            return _heartbeats(rec, start, until, limit)
        if rec.kind not in schedule.KINDS:
            return []
        after = start - _TICK
        if rec.kind == "every":
            if not rec.every_seconds or rec.anchor_at is None:
                return []
            after = max(after, rec.anchor_at)  # the anchor itself never fires
        return schedule.occurrences(
            rec.kind,
            cron_expr=rec.cron_expr or None,
            every_seconds=rec.every_seconds,
            run_at=rec.run_at,
            tz=schedule.parse_timezone(rec.timezone),
            anchor=rec.anchor_at or start,
            after=after,
            until=until - _TICK,
            limit=limit,
        )
    except (ScheduleError, ValueError, OverflowError):
        return []


def _heartbeats(rec: Recurrence, start: datetime, until: datetime, limit: int) -> list[datetime]:
    if rec.next_due_at is None or not rec.every_seconds:
        return []
    every = timedelta(seconds=rec.every_seconds)
    hours = heartbeat_rules.parse_active_hours(rec.active_hours)
    tz = schedule.parse_timezone(rec.timezone)
    due = rec.next_due_at
    if due < start:  # an overdue session: skip whole intervals instead of walking them one by one
        due += ((start - due) // every) * every
    found: list[datetime] = []
    while due < until and len(found) < limit:
        if heartbeat_rules.in_active_hours(hours, tz, due):
            if due >= start:
                found.append(due)
            due += every
        else:
            due = max(due + every, heartbeat_rules.next_active_start(hours, tz, due))
    return found


def typical_gap_seconds(moments: list[datetime], every_seconds: int | None) -> int | None:
    """Spacing of a dense job's occurrences, for the always-running density band."""
    if every_seconds:
        return every_seconds
    if len(moments) < 2:
        return None
    return round((moments[-1] - moments[0]).total_seconds() / (len(moments) - 1))
