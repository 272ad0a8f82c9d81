"""The calendar's vocabulary (contract §6), shared by both feed paths and the push frames: how a run's
status shows on the calendar, which run an occurrence shows, what actions an event offers, and the JSON
shape of an event and of an always-running job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduling.clock import iso

UTC_ZONE = ZoneInfo("UTC")
# Run status -> calendar status. Queued runs emit no event until they start, so neither path shows them.
CALENDAR_STATUS = {
    "running": "running",
    "success": "success",
    "error": "failed",
    "skipped": "skipped",
    "cancelled": "skipped",
    "missed": "missed",
}
STASIS_ACTIONS = ("approve_backfill_run", "reschedule", "delete_missed")
LEGEND = {
    "statuses": {
        "scheduled": "#64748b", "running": "#2563eb", "success": "#16a34a", "failed": "#dc2626",
        "missed": "#d97706", "disabled": "#9ca3af", "skipped": "#a8a29e",
    },
    "categories": {"critical": "#b91c1c", "normal": "#2563eb", "low": "#6b7280"},
}  # fmt: skip


@dataclass
class SourceInfo:
    """What the calendar shows of a job or session, whatever the occurrence."""

    source: str
    source_ref: str
    owner_id: str = ""
    session_id: str = ""
    channel: str = ""
    title: str = ""
    description: str = ""
    category: str = "normal"
    timezone: str = "UTC"
    enabled: bool = True
    deleted: bool = False
    every_seconds: int | None = None


@dataclass
class Occurrence:
    event_id: str
    scheduled_at: datetime
    status: str
    owner_id: str = ""
    run_id: str = ""
    run_status: str = ""


def event_id_of(source: str, source_ref: str, moment: datetime) -> str:
    return f"{source}|{source_ref}|{int(moment.timestamp())}"


def run_rank(attempt: int, created_epoch: float | None, run_id: str) -> tuple[int, float, str]:
    """Which of several runs of one occurrence the calendar shows: the newest attempt (a backfill is
    attempt 2), then the newest run. A total order, so the choice never depends on arrival order."""
    return (attempt or 1, created_epoch or 0.0, run_id)


def actions_for(source: str, status: str, enabled: bool, stasis_pending: bool) -> list[str]:
    if source == "cron" and status in ("scheduled", "disabled"):
        return ["run_now", "pause" if enabled else "resume", "disable"]
    if status == "missed" and stasis_pending:
        return list(STASIS_ACTIONS)
    return []


def local_iso(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat()


def render_event(
    occ: Occurrence, info: SourceInfo, tz: ZoneInfo, tz_name: str, stasis_pending: bool
) -> dict[str, Any]:
    return {
        "event_id": occ.event_id,
        "source": info.source,
        "source_ref": info.source_ref,
        "owner_id": occ.owner_id,
        "session_id": info.session_id or None,
        "channel": info.channel or None,
        "title": info.title,
        "description": info.description,
        "category": info.category,
        "color_key": occ.status,
        "status": occ.status,
        "scheduled_at_epoch": occ.scheduled_at.timestamp(),
        "scheduled_at_utc": iso(occ.scheduled_at),
        "scheduled_at_local": local_iso(occ.scheduled_at, tz),
        "timezone_display": tz_name,
        "always_running": False,
        "running": occ.status == "running",
        "actions": actions_for(info.source, occ.status, info.enabled, stasis_pending),
        "run_id": occ.run_id or None,
        "run_status": occ.run_status or None,
    }


ZONE_FIELDS = ("scheduled_at_local", "timezone_display")


def static_body(occ: Occurrence, info: SourceInfo, stasis_pending: bool) -> str:
    """The event as JSON without the viewer's zone fields (the feed appends those per request)."""
    event = render_event(occ, info, UTC_ZONE, "UTC", stasis_pending)
    for name in ZONE_FIELDS:
        del event[name]
    return json.dumps(event, separators=(",", ":"))


_ID, _EPOCH, _UTC = "\u0001id", "\u0001epoch", "\u0001utc"


class FutureBody:
    """static_body() for the future occurrences of one source, which differ only in their id and time:
    rendered once with placeholders, then filled in per occurrence (a new hourly job has 360)."""

    def __init__(self, info: SourceInfo, status: str, owner_id: str) -> None:
        placeholder = Occurrence(_ID, datetime(2000, 1, 1, tzinfo=UTC), status, owner_id)
        event = render_event(placeholder, info, UTC_ZONE, "UTC", False)
        for name in ZONE_FIELDS:
            del event[name]
        event["scheduled_at_epoch"], event["scheduled_at_utc"] = _EPOCH, _UTC
        text = json.dumps(event, separators=(",", ":"))
        self._info, self._status, self._owner = info, status, owner_id
        # The template cut at its three placeholders, kept in the order they appear in: a body is then
        # one join of seven strings. None when a title holds a marker: such bodies are rendered in full.
        self._segments: list[str] | None = None
        self._order: list[int] = []
        markers = [json.dumps(marker) for marker in (_ID, _EPOCH, _UTC)]
        if all(text.count(marker) == 1 for marker in markers):
            self._order = sorted(range(3), key=lambda index: text.index(markers[index]))
            self._segments, rest = [], text
            for index in self._order:
                before, _, rest = rest.partition(markers[index])
                self._segments.append(before)
            self._segments.append(rest)
        # An id is "<source>|<source_ref>|<epoch seconds>": its JSON is the prefix's JSON plus digits.
        self._id_prefix = f"{info.source}|{info.source_ref}|"
        self._id_prefix_json = json.dumps(self._id_prefix)[:-1]

    def render(self, event_id: str, moment: datetime) -> str:
        segments = self._segments
        if segments is None:
            return static_body(Occurrence(event_id, moment, self._status, self._owner), self._info, False)
        if event_id.startswith(self._id_prefix):
            id_json = self._id_prefix_json + event_id[len(self._id_prefix) :] + '"'
        else:
            id_json = json.dumps(event_id)
        # A float's repr is its JSON, and an ISO time needs no escaping.
        values = (id_json, repr(moment.timestamp()), f'"{iso(moment)}"')
        first, second, third = self._order
        return "".join(
            (segments[0], values[first], segments[1], values[second], segments[2], values[third], segments[3])
        )


def always_running_status(info: SourceInfo, any_running: bool) -> str:
    if info.deleted or not info.enabled:
        return "disabled"
    return "running" if any_running else "scheduled"


def always_running_item(
    info: SourceInfo,
    count: int,
    first: datetime,
    last: datetime,
    any_running: bool,
    tz: ZoneInfo,
    tz_name: str,
) -> dict[str, Any]:
    """A dense job shown once, with what a density band needs (count, spacing, first and last)."""
    status = always_running_status(info, any_running)
    gap = info.every_seconds or (round((last - first).total_seconds() / (count - 1)) if count > 1 else None)
    return {
        "event_id": event_id_of(info.source, info.source_ref, first),
        "source": info.source,
        "source_ref": info.source_ref,
        "owner_id": info.owner_id,
        "session_id": info.session_id or None,
        "channel": info.channel or None,
        "title": info.title,
        "description": info.description,
        "category": info.category,
        "color_key": status,
        "status": status,
        "always_running": True,
        "running": any_running,
        "actions": [] if info.deleted else actions_for(info.source, "scheduled", info.enabled, False),
        "count": count,
        "every_seconds": gap,
        "first_at_utc": iso(first),
        "last_at_utc": iso(last),
        "first_at_local": local_iso(first, tz),
        "last_at_local": local_iso(last, tz),
        "timezone_display": tz_name,
    }


def assemble(
    occurrences: list[tuple[Occurrence, SourceInfo]],
    tz: ZoneInfo,
    tz_name: str,
    pending_event_ids: set[str],
    max_per_job: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(events, always_running) from the occurrences in the window, in Python (SQLite, scan, frames)."""
    by_source: dict[tuple[str, str], list[tuple[Occurrence, SourceInfo]]] = {}
    for occ, info in occurrences:
        by_source.setdefault((info.source, info.source_ref), []).append((occ, info))
    events: list[dict[str, Any]] = []
    dense: list[dict[str, Any]] = []
    for group in by_source.values():
        if len(group) > max_per_job:
            moments = sorted(occ.scheduled_at for occ, _ in group)
            running = any(occ.status == "running" for occ, _ in group)
            dense.append(
                always_running_item(group[0][1], len(group), moments[0], moments[-1], running, tz, tz_name)
            )
            continue
        for occ, info in group:
            events.append(render_event(occ, info, tz, tz_name, occ.event_id in pending_event_ids))
    events.sort(key=lambda event: (event["scheduled_at_epoch"], event["event_id"]))
    dense.sort(key=lambda item: (item["source"], item["source_ref"]))
    return events, dense


def epoch_to_datetime(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None
