"""Push frames for a committed batch: one per applied event (contract §5 envelope), with the calendar
entries that event changed, so a client can patch its view without refetching (see `publish`).

An entry removed by the event (a future occurrence dropped by a schedule change) is sent as
`{"event_id": ..., "removed": true}`. An event that changed more than MAX_FRAME_ENTRIES entries (a new
minutely job), or that comes after its batch's frames already carry MAX_BATCH_ENTRIES, sends none and
`"calendar_refetch": true` instead: refetching is cheaper than the frame.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from calendar_projection.applying import Batch
from calendar_projection.models import CalendarEntry, CalendarStasisEntry
from calendar_projection.publish import EventFrame, event_frame
from calendar_projection.shapes import Occurrence, local_iso, render_event
from calendar_projection.sources import info_of
from scheduling import schedule
from scheduling.clock import iso
from scheduling.event_log import envelope
from scheduling.models import LifecycleEvent

MAX_FRAME_ENTRIES = 500
# And a batch's frames together carry at most this many (a bulk import of 500 hourly jobs would be 180,000
# entries, tens of MB through Redis to every server): the frames past it say `calendar_refetch` too.
MAX_BATCH_ENTRIES = 5_000


def build(events: list[LifecycleEvent], batch: Batch, first_version: int, last_seq: int) -> list[EventFrame]:
    rows = {**batch.materialised, **{eid: batch.entries[eid] for eid in batch.dirty_entries}}
    touched_ids = set().union(*batch.touched.values()) if batch.touched else set()
    # Only a missed occurrence offers the stasis actions (shapes.actions_for): a new hourly job touches
    # 360 future rows, none of which can have a pending entry.
    missed = [eid for eid in touched_ids if eid in rows and rows[eid].status == "missed"]
    pending = set(
        CalendarStasisEntry.objects.filter(event_id__in=missed, status="pending").values_list(
            "event_id", flat=True
        )
    ) if missed else set()  # fmt: skip
    tz_name = settings.UA_DEFAULT_TIMEZONE or "UTC"
    try:
        tz = schedule.parse_timezone(tz_name)
    except schedule.ScheduleError:
        tz_name, tz = "UTC", schedule.parse_timezone("UTC")
    by_pk = {src.pk: src for src in batch.sources.values()}
    render = _Renderer(by_pk, tz, tz_name)
    budget = MAX_BATCH_ENTRIES
    built = []
    for offset, event in enumerate(events):
        changed = sorted(batch.touched.get(event.seq, ()))
        removed = sorted(batch.removed.get(event.seq, ()))
        frame = event_frame(envelope(event), first_version + offset, last_seq)
        if len(changed) + len(removed) > MAX_FRAME_ENTRIES or budget < len(changed) + len(removed):
            frame["calendar_refetch"] = True  # type: ignore[typeddict-unknown-key]
        else:
            budget -= len(changed) + len(removed)
            entries = [render(rows[eid], eid in pending) for eid in changed if eid in rows]
            frame["calendar_entries"] = entries + [{"event_id": eid, "removed": True} for eid in removed]
        built.append(frame)
    return built


class _Renderer:
    """render_event() for a frame's entries. The future occurrences of one source differ only in their id
    and time (a new hourly job changes 360), so those share one rendering and get their own fields."""

    def __init__(self, by_pk: dict, tz: Any, tz_name: str) -> None:
        self.by_pk, self.tz, self.tz_name = by_pk, tz, tz_name
        self.shared: dict[tuple, dict[str, Any]] = {}

    def __call__(self, row: CalendarEntry, pending: bool) -> dict[str, Any]:
        src = self.by_pk.get(row.calendar_source_id)
        if src is None:  # the batch loads the source of every entry it touches
            raise LookupError(f"calendar entry {row.event_id} has no loaded source")
        occ = Occurrence(row.event_id, row.scheduled_at, row.status, row.owner_id, row.run_id, row.run_status)
        if row.run_id or pending:
            return render_event(occ, info_of(src), self.tz, self.tz_name, pending)
        key = (src.pk, row.status, row.owner_id)
        base = self.shared.get(key)
        if base is None:
            base = self.shared[key] = render_event(occ, info_of(src), self.tz, self.tz_name, False)
        return {
            **base,
            "event_id": row.event_id,
            "scheduled_at_epoch": row.scheduled_at.timestamp(),
            "scheduled_at_utc": iso(row.scheduled_at),
            "scheduled_at_local": local_iso(row.scheduled_at, self.tz),
            "actions": list(base["actions"]),
        }
