"""Pure heartbeat rules (contract §3): active hours, OK-only replies, delivery suppression, and the
validation of a session's configuration.

Nothing here reads the clock or the database; every function that needs "now" takes it.

Active hours are read on the wall clock of the session's time zone: "09:00-17:00" is active from 09:00
(inclusive) to 17:00 (exclusive) local time; "22:00-06:00" wraps midnight; equal ends ("00:00-00:00")
mean always. On a spring-forward day a window whose start falls in the gap opens at the first real
instant after the gap (the wall clock jumps from 01:59:59 to 03:00 and 03:00 is inside "02:30-05:00").
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduling import schedule
from scheduling.errors import InvalidInput
from scheduling.schedule import ScheduleError
from scheduling.targets import clean_target

ActiveHours = tuple[time, time]

OK_TOKEN = "HEARTBEAT_OK"
# A reply that is the token plus at most this many characters of other text is OK-only.
OK_ONLY_MAX_EXTRA_CHARS = 300
DELIVERY_MODES = ("last", "explicit", "none")
DEFAULT_VISIBILITY = {"show_ok": False, "show_alerts": True, "dedupe_window_seconds": 86400}
MAX_DELIVERY_TARGETS = 50
SUMMARY_TEXT_CHARS = 4000
MAX_DEDUPE_SECONDS = 366 * 86400

_ACTIVE_HOURS_RE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
# Markdown emphasis and punctuation a model tends to wrap the token in ("**HEARTBEAT_OK**", "HEARTBEAT_OK.").
_MARKUP = r"[\s*`_~.!:>\-]*"
_LEADING_TOKEN = re.compile(rf"^{_MARKUP}{OK_TOKEN}(?![A-Za-z0-9_]){_MARKUP}")
_TRAILING_TOKEN = re.compile(rf"{_MARKUP}(?<![A-Za-z0-9_]){OK_TOKEN}{_MARKUP}$")


# --- active hours ----------------------------------------------------------------------------------


def parse_active_hours(text: str | None) -> ActiveHours | None:
    """(start, end) local times from "HH:MM-HH:MM" ("24:00" = midnight); None/"" means always."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise ScheduleError("active_hours", 'must be a string like "09:00-17:00"')
    match = _ACTIVE_HOURS_RE.fullmatch(text)
    if not match:
        raise ScheduleError("active_hours", f'must look like "09:00-17:00", got {text!r}')
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    return _clock_time(start_h, start_m, text), _clock_time(end_h, end_m, text)


def _clock_time(hour: int, minute: int, text: str) -> time:
    if hour == 24 and minute == 0:
        return time(0, 0)
    if hour > 23 or minute > 59:
        raise ScheduleError("active_hours", f"invalid time of day in {text!r}")
    return time(hour, minute)


def format_active_hours(spec: ActiveHours | None) -> str:
    """The canonical stored form, "" for always."""
    if spec is None:
        return ""
    start, end = spec
    return f"{start:%H:%M}-{end:%H:%M}"


def _always(spec: ActiveHours | None) -> bool:
    return spec is None or spec[0] == spec[1]


def in_active_hours(spec: ActiveHours | str | None, tz: ZoneInfo, at: datetime) -> bool:
    """Whether the wall clock in `tz` at instant `at` is inside the window."""
    spec = parse_active_hours(spec) if isinstance(spec, str) else spec
    if spec is None or _always(spec):
        return True
    start, end = spec
    local = at.astimezone(tz).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end  # wraps midnight


def next_active_start(spec: ActiveHours | str | None, tz: ZoneInfo, after: datetime) -> datetime:
    """The first instant strictly after `after` at which the window opens (`after` itself if always)."""
    spec = parse_active_hours(spec) if isinstance(spec, str) else spec
    if spec is None or _always(spec):
        return after
    after = after.astimezone(UTC)
    today = after.astimezone(tz).date()
    openings = (
        _opening_instant(datetime.combine(today + timedelta(days=offset), spec[0]), tz)
        for offset in range(-1, 3)
    )
    return min(instant for instant in openings if instant > after)


def _opening_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant the wall clock in `tz` reads `wall` or later on that day."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second or first.astimezone(tz).replace(tzinfo=None) == wall:
        return min(first, second)  # an ordinary time, or the first pass of a repeated one
    return _transition_between(min(first, second), max(first, second), tz)


def _transition_between(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first whole second in (before, after] with `after`'s UTC offset: where a DST gap ends."""
    target = after.astimezone(tz).utcoffset()
    low, high = 0, int((after - before).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        if (before + timedelta(seconds=middle)).astimezone(tz).utcoffset() == target:
            high = middle
        else:
            low = middle
    return before + timedelta(seconds=high)


# --- replies and delivery --------------------------------------------------------------------------


def is_ok_only(reply: str | None) -> bool:
    """True when the reply is `HEARTBEAT_OK`, optionally preceded or followed by at most 300 characters
    of other text. An empty reply says nothing needs attention, so it counts as OK-only too."""
    text = (reply or "").strip()
    if not text:
        return True
    for pattern in (_LEADING_TOKEN, _TRAILING_TOKEN):
        rest = pattern.sub("", text, count=1)
        if rest != text:
            return len(rest.strip()) <= OK_ONLY_MAX_EXTRA_CHARS
    return False


def alert_digest(text: str) -> str:
    """Fingerprint of an alert for the dedupe window; whitespace differences do not make a new alert."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def suppression_reason(
    ok_only: bool,
    visibility: dict | None,
    delivery: dict | None,
    digest: str,
    last_digest: str,
    last_alert_at: datetime | None,
    now: datetime,
) -> str | None:
    """Why a heartbeat reply is not delivered, or None when it is sent. Content rules (visibility, then
    dedupe) come before routing rules (delivery mode, then targets), the contract's order."""
    # Stored settings are validated by the API, but the admin edits raw JSON: read them defensively.
    visibility = visibility if isinstance(visibility, dict) else {}
    delivery = delivery if isinstance(delivery, dict) else {}
    shown = {**DEFAULT_VISIBILITY, **visibility}
    if ok_only and not shown["show_ok"]:
        return "ok_suppressed"
    if not ok_only and not shown["show_alerts"]:
        return "alerts_suppressed"
    window_seconds = shown["dedupe_window_seconds"]
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int | float):
        window_seconds = DEFAULT_VISIBILITY["dedupe_window_seconds"]
    window = timedelta(seconds=window_seconds)
    if not ok_only and digest and digest == last_digest and last_alert_at and now - last_alert_at < window:
        return "dedupe"
    mode = (delivery or {}).get("mode", "last")
    if mode == "none":
        return "delivery_none"
    if mode == "explicit" and not (delivery or {}).get("targets"):
        return "no_targets"
    return None


def summarise_reply(ok_only: bool, text: str, *, session: Any, now: datetime) -> tuple[dict[str, Any], str]:
    """The session's `last_summary` for a reply, and the reply's alert digest ("" when OK-only).
    `session` supplies the config and alert memory: visibility, delivery, channel, last_alert_*."""
    digest = "" if ok_only else alert_digest(text)
    reason = suppression_reason(
        ok_only, session.visibility, session.delivery, digest, session.last_alert_digest,
        session.last_alert_at, now,
    )  # fmt: skip
    delivery = session.delivery if isinstance(session.delivery, dict) else {}
    mode = delivery.get("mode", "last")
    # "last" goes to the channel the session last spoke on, when it has one.
    targets = delivery.get("targets") or ([session.channel] if mode == "last" and session.channel else [])
    summary = {
        "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "ok_only": ok_only,
        "text": text[:SUMMARY_TEXT_CHARS],
        "sent": reason is None,
        "suppressed_reason": reason,
        "delivery": {"mode": mode, "targets": targets},
    }
    return summary, digest


# --- session configuration -------------------------------------------------------------------------


def clean_session_input(data: Any, existing: Any, min_every_seconds: int) -> dict[str, Any]:
    """Clean model field values for the config fields present in `data` (absent or null ones keep the
    existing value, or the model default on create). Raises InvalidInput naming the field."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    given = {name: value for name, value in data.items() if value is not None}
    clean: dict[str, Any] = {}
    if "every" in given:
        clean["every_seconds"] = _every(given["every"], min_every_seconds)
    elif existing is None:
        clean["every_seconds"] = _every("30m", min_every_seconds)
    if "active_hours" in data:
        clean["active_hours"] = format_active_hours(_parse(parse_active_hours, data["active_hours"]))
    if "timezone" in given:
        if not isinstance(given["timezone"], str):
            raise InvalidInput("timezone must be an IANA time zone name", "timezone")
        clean["timezone"] = str(_parse(schedule.parse_timezone, given["timezone"]))
    if "enabled" in given:
        if not isinstance(given["enabled"], bool):
            raise InvalidInput("enabled must be true or false", "enabled")
        clean["enabled"] = given["enabled"]
    for name in ("owner_id", "channel"):
        if name in data:
            clean[name] = _short_string(data[name], name)
    if "target" in data:
        clean["target"] = clean_target(data["target"], existing.target if existing else None)
    if "delivery" in given:
        clean["delivery"] = clean_delivery(given["delivery"])
    if "visibility" in given:
        clean["visibility"] = clean_visibility(given["visibility"], existing.visibility if existing else None)
    return clean


def clean_delivery(value: Any) -> dict[str, Any]:
    """`{"mode": "last"|"explicit"|"none", "targets": [...]}`; targets are channel names or objects."""
    if not isinstance(value, dict):
        raise InvalidInput('delivery must be an object like {"mode": "last", "targets": []}', "delivery")
    unknown = set(value) - {"mode", "targets"}
    if unknown:
        raise InvalidInput(f"delivery has unknown keys: {', '.join(sorted(unknown))}", "delivery")
    mode = value.get("mode", "last")
    if mode not in DELIVERY_MODES:
        raise InvalidInput(f"delivery.mode must be one of {', '.join(DELIVERY_MODES)}", "delivery")
    targets = value.get("targets") or []
    if not isinstance(targets, list) or not all(_delivery_target(item) for item in targets):
        raise InvalidInput("delivery.targets must be a list of channel names or objects", "delivery")
    if len(targets) > MAX_DELIVERY_TARGETS:
        raise InvalidInput(f"delivery.targets is limited to {MAX_DELIVERY_TARGETS} entries", "delivery")
    return {"mode": mode, "targets": targets}


def _delivery_target(item: Any) -> bool:
    return (isinstance(item, str) and bool(item.strip())) or isinstance(item, dict)


def clean_visibility(value: Any, previous: dict | None) -> dict[str, Any]:
    """Merges the given keys over the previous (or default) visibility."""
    if not isinstance(value, dict):
        raise InvalidInput("visibility must be an object", "visibility")
    unknown = set(value) - set(DEFAULT_VISIBILITY)
    if unknown:
        raise InvalidInput(f"visibility has unknown keys: {', '.join(sorted(unknown))}", "visibility")
    merged = {**DEFAULT_VISIBILITY, **(previous or {}), **value}
    for name in ("show_ok", "show_alerts"):
        if not isinstance(merged[name], bool):
            raise InvalidInput(f"visibility.{name} must be true or false", "visibility")
    window = merged["dedupe_window_seconds"]
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= MAX_DEDUPE_SECONDS:
        raise InvalidInput("visibility.dedupe_window_seconds must be a whole number of seconds", "visibility")
    return merged


def _every(value: Any, minimum: int) -> int:
    seconds = _parse(schedule.parse_every, value)
    if seconds < minimum:
        raise InvalidInput(f"every must be at least {minimum} seconds", "every")
    return seconds


def _short_string(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 128:
        raise InvalidInput(f"{name} must be a string of at most 128 characters", name)
    return value


def _parse(parser: Any, *args: Any) -> Any:
    try:
        return parser(*args)
    except ScheduleError as error:
        raise InvalidInput(error.detail, error.field) from None
