"""The calendar window (contract §6): which instants a feed request covers.

Default week = the most recent Sunday 00:00 local + 7 days; day = local midnight + 24 h; an explicit
`start` keeps its instant and the view's length is added on the local wall clock (a DST week is 167 or
169 hours). `start`/`end` take epoch seconds or ISO-8601 (Z/offset allowed; naive = the requested zone).
The window is clamped to [now - 30 d, now + 14 d]. An unknown zone falls back to UA_DEFAULT_TIMEZONE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduling import schedule
from scheduling.errors import InvalidInput

PAST_LIMIT = timedelta(days=30)
FUTURE_LIMIT = timedelta(days=14)
VIEWS = ("day", "week")


@dataclass(frozen=True)
class Window:
    tz_name: str
    tz: ZoneInfo
    view: str
    start: datetime
    end: datetime


def resolve_timezone(name: str | None, fallback: str) -> tuple[str, ZoneInfo]:
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return candidate, schedule.parse_timezone(candidate)
            except schedule.ScheduleError:
                continue
    return "UTC", schedule.parse_timezone("UTC")


def parse_instant(raw: str, field: str, tz: ZoneInfo) -> datetime:
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise InvalidInput(f"{field} must be epoch seconds or ISO-8601", field)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidInput(f"{field} is out of range", field) from None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        raise InvalidInput(f"{field} must be epoch seconds or ISO-8601", field) from None
    try:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput(f"{field} is out of range", field) from None


def _local_midnight(moment: datetime, tz: ZoneInfo) -> datetime:
    local_day = moment.astimezone(tz).date()
    return _wall(datetime.combine(local_day, time()), tz)


def _wall(naive: datetime, tz: ZoneInfo) -> datetime:
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _add_wall_days(moment: datetime, days: int, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz).replace(tzinfo=None)
    return _wall(local + timedelta(days=days), tz)


def resolve_window(
    *, view: str | None, start: str | None, end: str | None, tz_name: str | None, fallback_tz: str,
    now: datetime,
) -> Window:  # fmt: skip
    view = view or "week"
    if view not in VIEWS:
        raise InvalidInput("view must be day or week", "view")
    name, tz = resolve_timezone(tz_name, fallback_tz)
    days = 7 if view == "week" else 1
    if start:
        begin = parse_instant(start, "start", tz)
    else:
        begin = _local_midnight(now, tz)
        if view == "week":
            weekday = begin.astimezone(tz).weekday()  # Monday 0 .. Sunday 6
            begin = _add_wall_days(begin, -((weekday + 1) % 7), tz)
    finish = parse_instant(end, "end", tz) if end else _add_wall_days(begin, days, tz)
    if finish <= begin:
        raise InvalidInput("end must be after start", "end")
    begin = max(begin, now - PAST_LIMIT)
    finish = min(finish, now + FUTURE_LIMIT)
    finish = max(finish, begin)  # a window wholly outside the limits is empty, not an error
    return Window(name, tz, view, begin, finish)
