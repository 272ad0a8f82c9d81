"""The dashboard's calendar window (contract §9): `?view=week|day&start=YYYY-MM-DD&tz=IANA`.

A week starts on the Sunday on or before `start`, a day at local midnight; both are measured in local days,
so a DST week is 167 or 169 hours long. The window also lists the hours a DST change removes (a gap: those
local times never happen) or repeats (they happen twice), for the grid to mark. Pure: takes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

VIEWS = ("week", "day")


@dataclass(frozen=True)
class ClockShift:
    """A DST change inside the window: on day `day` (0-based), local `hour` to `hour + hours` is
    skipped (`gap`) or repeated (`repeat`)."""

    day: int
    hour: float
    hours: float
    kind: str
    label: str


@dataclass(frozen=True)
class CalendarWindow:
    view: str
    tz_name: str
    first_day: date
    days: int
    start_utc: datetime
    end_utc: datetime
    today: date
    shifts: list[ClockShift] = field(default_factory=list)

    @property
    def day_dates(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]

    def neighbour(self, direction: int) -> date:
        return self.first_day + timedelta(days=direction * self.days)


def zone_or_default(tz_name: str | None) -> tuple[str, ZoneInfo]:
    """The requested IANA zone, or UA_DEFAULT_TIMEZONE when it is missing or unknown (as the feed does)."""
    for candidate in (tz_name, settings.UA_DEFAULT_TIMEZONE, "UTC"):
        if not candidate:
            continue
        try:
            return candidate, ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC", ZoneInfo("UTC")


def calendar_window(
    view: str | None, start: str | None, tz_name: str | None, now: datetime
) -> CalendarWindow:
    name, zone = zone_or_default(tz_name)
    view = view if view in VIEWS else "week"
    today = now.astimezone(zone).date()
    try:
        anchor = date.fromisoformat(start) if start else today
    except ValueError:
        anchor = today
    if view == "week":
        # date.weekday(): Monday 0 … Sunday 6, so this steps back to the Sunday on or before the anchor.
        first_day, days = anchor - timedelta(days=(anchor.weekday() + 1) % 7), 7
    else:
        first_day, days = anchor, 1
    start_utc = _local_midnight(first_day, zone)
    end_utc = _local_midnight(first_day + timedelta(days=days), zone)
    return CalendarWindow(
        view=view,
        tz_name=name,
        first_day=first_day,
        days=days,
        start_utc=start_utc,
        end_utc=end_utc,
        today=today,
        shifts=clock_shifts(first_day, days, zone),
    )


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def clock_shifts(first_day: date, days: int, zone: ZoneInfo) -> list[ClockShift]:
    """Every UTC-offset change in the window, found by comparing offsets a quarter hour apart (zones
    shift on quarter hours at the finest), as the local hours it skips or repeats."""
    shifts = []
    start = _local_midnight(first_day, zone)
    end = _local_midnight(first_day + timedelta(days=days), zone)
    step = timedelta(minutes=15)
    moment, offset = start, start.astimezone(zone).utcoffset()
    while moment < end:
        following = moment + step
        next_offset = following.astimezone(zone).utcoffset()
        if next_offset != offset and offset is not None and next_offset is not None:
            shifts.append(_shift_at(following, offset, next_offset, first_day, zone))
        moment, offset = following, next_offset
    return shifts


def _shift_at(
    instant: datetime, before: timedelta, after: timedelta, first_day: date, zone: ZoneInfo
) -> ClockShift:
    local_after = instant.astimezone(zone)
    hours = abs((after - before).total_seconds()) / 3600
    if after > before:
        # Clocks jump forward: the local times [after - shift, after) never happen.
        local_start = (instant + before).replace(tzinfo=None)
        kind, verb = "gap", "skipped"
    else:
        # Clocks fall back: the local times [after, after + shift) happen twice.
        local_start = local_after.replace(tzinfo=None)
        kind, verb = "repeat", "repeated"
    day = (local_start.date() - first_day).days
    hour = local_start.hour + local_start.minute / 60
    until = (datetime.combine(local_start.date(), time(0)) + timedelta(hours=hour + hours)).strftime("%H:%M")
    label = f"{local_start:%H:%M}–{until} {verb} (clock change)"
    return ClockShift(day=day, hour=hour, hours=hours, kind=kind, label=label)
