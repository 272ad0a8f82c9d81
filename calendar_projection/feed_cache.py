"""Rendered calendar windows, kept per process and reused while they are still exactly right.

A week of 500 jobs is ~20,000 events, about 10 MB of JSON: most of a feed request is the database
concatenating that text. What a window shows changes only when
- the projection applies an event (its `version` moves), or
- the clock passes a future occurrence in the window (it is no longer shown once its time has passed
  without a run; a dense source's expanded future and counts move the same way).

So a rendering is stored under (version, window, filters) together with the first such moment, and a
request at the same version before that moment gets the stored events. The stasis queue is read on
every request. Bounded by UA_CALENDAR_CACHE_BYTES (0 turns it off), least recently used first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Min

from calendar_projection.expansion import upcoming
from calendar_projection.feed import FeedRows, dense_sources, pending_stasis, projection_feed, visible_rows
from calendar_projection.models import ProjectionState
from calendar_projection.sources import recurrence_of
from calendar_projection.window import Window


@dataclass
class _Rendering:
    events_json: str
    always_running: list[dict[str, Any]]
    valid_until: datetime | None  # None: nothing in the window moves with the clock

    @property
    def size(self) -> int:
        return len(self.events_json) + 500 * len(self.always_running)


_lock = threading.Lock()
_renderings: OrderedDict[tuple, _Rendering] = OrderedDict()
_stats = {"hits": 0, "misses": 0}


def cached_feed(
    window: Window, source: str, owner_id: str | None, now: datetime, max_per_job: int, state: ProjectionState
) -> FeedRows:
    limit = int(settings.UA_CALENDAR_CACHE_BYTES)
    projection = (state.version, state.last_event_seq, state.updated_at)
    key = (projection, window.start, window.end, window.tz_name, source, owner_id, max_per_job)
    with _lock:
        hit = _renderings.get(key)
        if hit is not None and (hit.valid_until is None or now < hit.valid_until):
            _renderings.move_to_end(key)
            _stats["hits"] += 1
            events_json, always_running = hit.events_json, hit.always_running
        else:
            hit = None
            _stats["misses"] += 1
    if hit is not None:
        # A copy: the view serialises it, and no caller may change what the next request gets.
        copies = [dict(item) for item in always_running]
        return FeedRows(events_json, copies, pending_stasis(owner_id, source))
    # Read before the feed, with the same `now`: the moment can only be earlier than the truth.
    valid_until = next_change(window, source, owner_id, now) if limit > 0 else None
    rows = projection_feed(window, source, owner_id, now, max_per_job)
    if limit > 0:
        rendering = _Rendering(rows.events_json, [dict(item) for item in rows.always_running], valid_until)
        with _lock:
            _renderings[key] = rendering
            _renderings.move_to_end(key)
            while _renderings and sum(r.size for r in _renderings.values()) > limit:
                _renderings.popitem(last=False)
    return rows


def next_change(window: Window, source: str, owner_id: str | None, now: datetime) -> datetime | None:
    """The first moment at or after `now` at which the clock alone changes what the window shows."""
    moments: list[datetime] = []
    future = visible_rows(window, source, owner_id, now).filter(run_id="", scheduled_at__gte=now)
    first = future.aggregate(first=Min("scheduled_at"))["first"]
    if first is not None:
        moments.append(first)
    for src in dense_sources(source, owner_id):
        moments += upcoming(recurrence_of(src), now, window.end, 1)
    return min(moments) if moments else None


def clear() -> None:
    with _lock:
        _renderings.clear()


def stats() -> dict[str, int]:
    with _lock:
        return dict(_stats, entries=len(_renderings))

