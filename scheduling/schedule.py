"""Pure schedule arithmetic: parsing schedule inputs and computing fire times.

Nothing here reads the clock; every function that needs "now" takes it as an argument.
Every datetime returned is an aware UTC datetime. Naive datetimes passed in are taken as UTC.

Cron expressions have 5 fields (minute hour day-of-month month day-of-week) or 6, where
the 6th, LAST field is seconds (croniter's convention). The @hourly/@daily/@midnight/
@weekly/@monthly/@yearly/@annually aliases are accepted and normalised to 5 fields.

DST rule (the Vixie cron / systemd behaviour). Cron is evaluated on the wall clock of the
job's time zone. A job is "wall-clock" unless its hour field covers all 24 hours, in which
case it is "hourly-wildcard" (e.g. "0 * * * *", "*/15 * * * *"):

* Spring forward (wall times that never happen, e.g. 02:30 on 2026-03-08 in Chicago):
  a wall-clock job fires once, shifted forward by the gap length (02:30 -> 03:30 CDT),
  which is how zoneinfo reads a nonexistent time with fold=0. It is never skipped.
  An hourly-wildcard job simply has no slots in the gap (23 hourly runs that day).
* Fall back (wall times that happen twice, e.g. 01:30 on 2026-11-01 in Chicago):
  a wall-clock job fires once, at the first (daylight-time, fold=0) instant.
  An hourly-wildcard job fires at every real slot: both 01:00 CDT and 01:00 CST
  (25 hourly runs that day).
* Results are strictly increasing UTC instants; slots that land on the same instant
  (a shifted 02:30 and a real 03:30) fire once.

croniter is used only for naive wall-clock matching, where there is no DST to get wrong.
With a tz-aware start (croniter 7.0) it clamps skipped times to the end of the gap
(02:30 -> 03:00) and fires fixed-hour jobs twice in a repeated hour, so the DST mapping
from wall-clock slots to instants is done here.

Relative run_at forms ("20m", "in 2 hours", "1d") are elapsed time; "tomorrow 9am" and
bare times of day are wall-clock time in the given zone.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

KINDS = frozenset({"at", "cron", "every"})
# Far beyond any sane interval, and small enough that anchor + k*every never overflows datetime.
MAX_EVERY_SECONDS = 10 * 366 * 86400

_UTC_ZONE = ZoneInfo("UTC")
_CRON_ALIASES = {
    "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}  # fmt: skip
_UNIT_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * 86400),
}
_DURATION_RE = re.compile(r"(?:\d+(?:\.\d+)?\s*[a-z]+[\s,]*)+")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DAY = r"(?:today|tomorrow)"
_CLOCK_RE = re.compile(
    rf"(?:(?P<day1>{_DAY})\s+)?(?:at\s+|@\s*)?"
    r"(?:(?P<word>noon|midnight)|(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?:(?P<ampm>[ap])\.?m\.?)?)?"
    rf"(?:\s+(?P<day2>{_DAY}))?"
)


class ScheduleError(ValueError):
    """Invalid schedule input; `field` names the offending request field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


# --- parsing -------------------------------------------------------------------------------


def parse_timezone(name: str | None) -> ZoneInfo:
    """IANA zone by name; None or "" means UTC."""
    if isinstance(name, ZoneInfo):
        return name
    if name is None or (isinstance(name, str) and not name.strip()):
        return _UTC_ZONE
    if not isinstance(name, str):
        raise ScheduleError("timezone", "must be an IANA time zone name")
    key = name.strip()
    if key.upper() in {"UTC", "Z"}:
        return _UTC_ZONE
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError/OSError cover keys like "../etc" or a bare directory such as "America".
        raise ScheduleError("timezone", f"unknown time zone {key!r}")


def _duration_seconds(text: str) -> Decimal | None:
    """Seconds in "90m", "1h30m", "2 hours, 5 min"; None if it is not a duration."""
    text = re.sub(r"\band\b", " ", text.strip().lower())
    if not _DURATION_RE.fullmatch(text):
        return None
    total = Decimal(0)
    for number, unit in _DURATION_PART_RE.findall(text):
        if unit not in _UNIT_SECONDS:
            return None
        total += Decimal(number) * _UNIT_SECONDS[unit]
    return total


def parse_every(value: str | int | float) -> int:
    """Interval in whole seconds from 3600, "3600", "30m", "2h", "1h30m", "1d", "every 45s"."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScheduleError("every", "must be a duration like '30m' or a number of seconds")
    if isinstance(value, int):
        seconds = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ScheduleError("every", "must be a finite number of seconds")
        seconds = Decimal(value)
    else:
        text = value.strip().lower().removeprefix("every").strip()
        parsed = Decimal(text) if text.isdigit() else _duration_seconds(text)
        if parsed is None:
            raise ScheduleError("every", f"cannot parse duration {value!r} (try '30m', '2h', '1d')")
        seconds = parsed
    if seconds != seconds.to_integral_value():
        raise ScheduleError("every", "must be a whole number of seconds")
    if seconds <= 0:
        raise ScheduleError("every", "must be positive")
    if seconds > MAX_EVERY_SECONDS:
        raise ScheduleError("every", f"must be at most {MAX_EVERY_SECONDS} seconds")
    return int(seconds)


class _CronSpec(NamedTuple):
    expr: str
    all_hours: bool  # hour field covers 0-23: DST gaps skip slots, repeated hours fire twice


def _cron_spec(expr: str) -> _CronSpec:
    if not isinstance(expr, str) or not expr.strip():
        raise ScheduleError("cron_expr", "must be a non-empty cron expression")
    return _parse_cron(expr)


@lru_cache(maxsize=1024)
def _parse_cron(expr: str) -> _CronSpec:
    normalised = " ".join(expr.split())
    normalised = _CRON_ALIASES.get(normalised.lower(), normalised)
    fields = normalised.split(" ")
    if len(fields) not in (5, 6):
        raise ScheduleError(
            "cron_expr", "must have 5 fields (min hour dom month dow), optionally a 6th for seconds"
        )
    try:
        expanded, _ = croniter.expand(normalised)
        # Catches expressions that parse but can never fire (croniter searches ~50 years).
        croniter(normalised, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ScheduleError("cron_expr", f"invalid cron expression {expr!r}: {exc}".splitlines()[0])
    hours = expanded[1]
    return _CronSpec(normalised, hours == ["*"] or set(hours) >= set(range(24)))


def validate_cron(expr: str) -> str:
    """Check a 5/6-field cron expression (6th = seconds, last) and return it normalised."""
    return _cron_spec(expr).expr


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _wall_to_utc(wall: datetime, tz: ZoneInfo, fold: int = 0) -> datetime:
    # fold=0 reads a nonexistent wall time with the pre-gap offset, i.e. shifted forward.
    return wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    try:
        if not math.isfinite(seconds):
            raise ValueError
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ScheduleError("run_at", f"epoch seconds out of range: {seconds!r}")


def _parse_clock(text: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    """Match "[today|tomorrow] [at] H[:MM][am|pm]", "noon", "midnight"; None if another shape."""
    match = _CLOCK_RE.fullmatch(text)
    if not match or not (match["word"] or match["h"]) or (match["day1"] and match["day2"]):
        return None
    if match["h"] and not (match["m"] or match["ampm"] or match["day1"] or match["day2"]):
        if not text.startswith(("at", "@")):
            return None  # a bare number is epoch seconds, handled elsewhere
    if match["word"]:
        hour, minute = (12 if match["word"] == "noon" else 0), 0
    else:
        hour, minute = int(match["h"]), int(match["m"] or 0)
        if match["ampm"]:
            if not 1 <= hour <= 12:
                raise ScheduleError("run_at", f"invalid 12-hour time {text!r}")
            hour = hour % 12 + (12 if match["ampm"] == "p" else 0)
        if hour > 23 or minute > 59:
            raise ScheduleError("run_at", f"invalid time of day {text!r}")
    day_word = match["day1"] or match["day2"]
    today = now.astimezone(tz).date()
    at = time(hour, minute)
    if day_word == "today":
        return _wall_to_utc(datetime.combine(today, at), tz)  # taken literally, even if past
    if day_word == "tomorrow":
        return _wall_to_utc(datetime.combine(today + timedelta(days=1), at), tz)
    # Bare time of day: the next moment the wall clock shows it. Trying fold=1 today catches
    # the second pass of a repeated hour ("1:30am" at 01:45 CDT on fall-back day).
    candidates = [
        instant
        for day in (today, today + timedelta(days=1), today + timedelta(days=2))
        for instant in _wall_instants(datetime.combine(day, at), tz, all_hours=True)
        or (_wall_to_utc(datetime.combine(day, at), tz),)  # nonexistent: shifted forward
    ]
    return min(c for c in candidates if c > now)


def _parse_natural(text: str, tz: ZoneInfo, now: datetime) -> datetime | None:
    # dateparser is slow to import and very lenient ("a" parses as a date), so it is the
    # last resort and only sees inputs with a little substance.
    if len(text) < 3 or not re.search(r"[a-z]{2}|\d", text):
        return None
    import dateparser

    # No TIMEZONE setting: dateparser then returns naive wall time (localised by zoneinfo
    # below; its own localisation uses the base's offset across DST) or an aware datetime
    # when the text names a zone ("5pm EST").
    base = now.astimezone(tz).replace(tzinfo=None)
    try:
        parsed = dateparser.parse(
            text, languages=["en"], settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": base}
        )
    except Exception:  # a lenient third-party parser failing on odd input means "not a date"
        return None
    if parsed is None:
        return None
    return _as_utc(parsed) if parsed.tzinfo is not None else _wall_to_utc(parsed, tz)


def parse_run_at(value: object, tz_name: str, now: datetime) -> datetime:
    """One-shot fire time from ISO-8601, epoch seconds, "20m"/"in 2 hours", or "tomorrow 9am"."""
    tz = parse_timezone(tz_name)
    now = _as_utc(now)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScheduleError("run_at", "must be an ISO-8601 string, epoch seconds or a phrase like '20m'")
    if not isinstance(value, str):
        return _from_epoch(value)
    text = " ".join(value.split()).lower()
    if not text or len(text) > 200:  # the length cap keeps dateparser's cost bounded
        raise ScheduleError("run_at", "must be a non-empty time expression of at most 200 characters")
    if _NUMBER_RE.fullmatch(text):
        return _from_epoch(float(text))
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        pass
    else:
        try:
            return _as_utc(parsed) if parsed.tzinfo is not None else _wall_to_utc(parsed, tz)
        except OverflowError:  # e.g. 9999-12-31T23:59-12:00 is past datetime's range once in UTC
            raise ScheduleError("run_at", f"out of range: {value!r}") from None
    relative = re.sub(r"^(?:in\s+|\+\s*)|\s+(?:from\s+now|later)$", "", text)
    seconds = _duration_seconds(relative)
    if seconds is not None:
        try:
            return now + timedelta(seconds=float(seconds))
        except OverflowError:
            raise ScheduleError("run_at", f"too far in the future: {value!r}")
    for parser in (_parse_clock, _parse_natural):
        try:
            result = parser(text, tz, now)
        except (OverflowError, ValueError) as exc:
            if isinstance(exc, ScheduleError):
                raise
            raise ScheduleError("run_at", f"cannot parse {value!r}")
        if result is not None:
            return result
    raise ScheduleError("run_at", f"cannot parse {value!r} as a time")


# --- occurrences ---------------------------------------------------------------------------

_PROBES = (timedelta(days=-2), timedelta(days=-1), timedelta(days=1), timedelta(days=2))


def _transition_span(tz: ZoneInfo, instant: datetime) -> timedelta:
    """Size of a UTC-offset change close enough to `instant` to reorder slots, else zero."""

    def offset_at(moment: datetime) -> timedelta:
        offset = moment.astimezone(tz).utcoffset()
        if offset is None:  # cannot happen for an aware datetime in a ZoneInfo
            raise ValueError(f"no UTC offset for {moment!r} in {tz}")
        return offset

    offset = offset_at(instant)
    size = max(abs(offset_at(instant + probe) - offset) for probe in _PROBES)
    # Only a transition within about `size` of the instant matters; checking at twice that
    # keeps cron_next cheap on the days around a transition.
    if size and offset_at(instant - 2 * size) == offset == offset_at(instant + 2 * size):
        return timedelta(0)
    return size


def _wall_instants(wall: datetime, tz: ZoneInfo, all_hours: bool) -> tuple[datetime, ...]:
    """The UTC instants at which a matching wall-clock slot fires, per the DST rule."""
    first, second = _wall_to_utc(wall, tz, 0), _wall_to_utc(wall, tz, 1)
    if first == second:
        return (first,)
    if first.astimezone(tz).replace(tzinfo=None) == wall:  # repeated (fall back)
        return (first, second) if all_hours else (first,)
    return () if all_hours else (first,)  # nonexistent (spring forward)


_STEADY_PROBE = timedelta(hours=1)
_STEADY_MARGIN = timedelta(days=2)


def _steady_offset(tz: ZoneInfo, start: datetime, end: datetime) -> timedelta | None:
    """The zone's UTC offset if it is the same at every hour of [start, end], else None."""
    offset = start.astimezone(tz).utcoffset()
    moment = start
    while moment < end:
        moment = min(moment + _STEADY_PROBE, end)
        if moment.astimezone(tz).utcoffset() != offset:
            return None
    return offset


def _cron_in_one_offset(
    expr: str, tz: ZoneInfo, after: datetime, until: datetime, limit: int
) -> list[datetime] | None:
    """occurrences() of a cron expression in (after, until] when the zone keeps one UTC offset over the
    whole stretch (and two days either side): one croniter walk over wall time, instead of cron_next's
    fresh walk per occurrence (a new hourly job's 15 days are 360 of them). None near a transition:
    there the slot rules of cron_next apply."""
    offset = _steady_offset(tz, after - _STEADY_MARGIN, until + _STEADY_MARGIN)
    if offset is None:
        return None
    spec = _cron_spec(expr)
    start = (after + offset).replace(tzinfo=None, microsecond=0)
    walls = croniter(spec.expr, start)
    found: list[datetime] = []
    while len(found) < limit:
        try:
            wall = walls.get_next(datetime)
        except CroniterError as exc:
            raise ScheduleError("cron_expr", f"no further occurrence: {exc}")
        instant = (wall - offset).replace(tzinfo=UTC)
        if instant > until:
            break
        if instant > after:
            found.append(instant)
    return found


def cron_next(expr: str, tz: ZoneInfo, after: datetime) -> datetime:
    """First fire time of `expr` (wall clock in `tz`) strictly after `after`."""
    spec = _cron_spec(expr)
    after = _as_utc(after)
    # Near a transition, slots whose wall time is before `after`'s can still fire after it
    # (a shifted gap slot, or the second pass of a repeated hour), and a later slot can fire
    # before an earlier one; so scan a window of wall time and keep the smallest instant.
    span = _transition_span(tz, after)
    start = after.astimezone(tz).replace(tzinfo=None, microsecond=0) - span
    walls = croniter(spec.expr, start)  # naive start: pure wall-clock matching, no DST
    best: datetime | None = None
    horizon: datetime | None = None
    while True:
        try:
            wall = walls.get_next(datetime)
        except CroniterError as exc:
            raise ScheduleError("cron_expr", f"no further occurrence: {exc}")
        if horizon is not None and best is not None and wall > horizon:
            return best
        for instant in _wall_instants(wall, tz, spec.all_hours):
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and horizon is None:
            extra = max(span, _transition_span(tz, best))
            if not extra:
                return best
            horizon = wall + extra


def every_next(every_seconds: int, anchor: datetime, after: datetime) -> datetime:
    """Smallest anchor + k*every (k >= 0) strictly after `after`."""
    if isinstance(every_seconds, bool) or not isinstance(every_seconds, int) or every_seconds <= 0:
        raise ScheduleError("every", "must be a positive number of seconds")
    anchor, after = _as_utc(anchor), _as_utc(after)
    if after < anchor:
        return anchor
    step = timedelta(seconds=every_seconds)
    return anchor + ((after - anchor) // step + 1) * step


def _every_lattice(
    every_seconds: int, anchor: datetime, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """The lattice anchor + k*every in (after, until], as every_next() would step it, in one go (a new
    hourly job's 15-day calendar future is 360 of them)."""
    first = every_next(every_seconds, anchor, after)
    if first > until:
        return []
    step = timedelta(seconds=every_seconds)
    count = min(limit, (until - first) // step + 1)
    return [first + k * step for k in range(count)]


def _missing(kind: str, field: str) -> ScheduleError:
    return ScheduleError(field, f"required for kind {kind!r}")


def next_occurrence(
    kind: str,
    *,
    cron_expr: str | None,
    every_seconds: int | None,
    run_at: datetime | None,
    tz: ZoneInfo,
    anchor: datetime,
    after: datetime,
) -> datetime | None:
    """Next fire time strictly after `after`, or None when a one-shot has passed."""
    after = _as_utc(after)
    if kind == "at":
        if run_at is None:
            raise _missing(kind, "run_at")
        run_at = _as_utc(run_at)
        return run_at if run_at > after else None
    if kind == "cron":
        if cron_expr is None:
            raise _missing(kind, "cron_expr")
        return cron_next(cron_expr, tz, after)
    if kind == "every":
        if every_seconds is None:
            raise _missing(kind, "every")
        return every_next(every_seconds, anchor, after)
    raise ScheduleError("kind", f"must be one of {sorted(KINDS)}")


def occurrences(
    kind: str,
    *,
    cron_expr: str | None,
    every_seconds: int | None,
    run_at: datetime | None,
    tz: ZoneInfo,
    anchor: datetime,
    after: datetime,
    until: datetime,
    limit: int,
) -> list[datetime]:
    """Fire times in (after, until], ascending, at most `limit` of them."""
    if kind not in KINDS:
        raise ScheduleError("kind", f"must be one of {sorted(KINDS)}")
    until = _as_utc(until)
    if kind == "cron" and cron_expr is not None and limit > 0:
        steady = _cron_in_one_offset(cron_expr, tz, _as_utc(after), until, limit)
        if steady is not None:
            return steady
    if kind == "every" and every_seconds is not None and limit > 0:
        return _every_lattice(every_seconds, anchor, _as_utc(after), until, limit)
    result: list[datetime] = []
    cursor = _as_utc(after)
    while len(result) < limit:
        upcoming = next_occurrence(
            kind,
            cron_expr=cron_expr,
            every_seconds=every_seconds,
            run_at=run_at,
            tz=tz,
            anchor=anchor,
            after=cursor,
        )
        if upcoming is None or upcoming > until:
            break
        result.append(upcoming)
        cursor = upcoming
    return result
