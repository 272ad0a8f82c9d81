"""Diffing the projection path against the scan path for one window, by (event_id, status)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from calendar_projection.feed import projection_feed
from calendar_projection.scan import scan_feed
from calendar_projection.window import Window


@dataclass
class Difference:
    only_projection: set[tuple[str, str]]
    only_scan: set[tuple[str, str]]

    @property
    def empty(self) -> bool:
        return not self.only_projection and not self.only_scan


def feed_keys(events: list[dict], always_running: list[dict]) -> set[tuple[str, str]]:
    keys = {(event["event_id"], event["status"]) for event in events}
    return keys | {("always_running:" + item["event_id"], item["status"]) for item in always_running}


def compare(window: Window, source: str, owner_id: str | None, now: datetime, max_per_job: int) -> Difference:
    rows = projection_feed(window, source, owner_id, now, max_per_job)
    projected = feed_keys(json.loads(rows.events_json), rows.always_running)
    events, dense, _ = scan_feed(window, source, owner_id, now, max_per_job)
    scanned = feed_keys(events, dense)
    return Difference(projected - scanned, scanned - projected)
