"""A push frame's calendar entries are the calendar feed's events for the same occurrences, field for
field, so a client that patches its view from frames shows what a refetch would show."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from calendar_projection import projector
from calendar_projection.feed import projection_feed
from calendar_projection.window import resolve_window
from scheduling import clock
from scheduling.services import claims
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 27, 10, 0, tzinfo=UTC)  # two days before a European DST change


def job_payload_without_every(**fields: object) -> dict:
    body = job_payload(**fields)
    del body["every"]
    return body


@override_settings(UA_DEFAULT_TIMEZONE="Europe/Berlin")
def test_frame_entries_equal_the_feed_events(monkeypatch):
    frames: list = []
    monkeypatch.setattr(projector, "_after_commit", lambda built, *rest: frames.extend(built))
    with clock.frozen(T0):
        projector.project_next_batch()
        job_services.create_job(job_payload(every="1h", title='hourly "quoted"'), None)
        job_services.create_job(
            job_payload_without_every(cron_expr="30 2 * * *", timezone="Europe/Berlin"), None
        )
        paused = job_services.create_job(job_payload(every="6h"), "o-1")
        job_services.update_job(paused.job_id, {"enabled": False}, "o-1", partial=True)
        job_services.create_job(job_payload(every="2h"), None)
    with clock.frozen(T0 + timedelta(hours=2)):
        claims.claim_due_occurrences(clock.now(), "w-1", 10)
        while projector.project_next_batch():
            pass
        window = resolve_window(view="week", start=None, end=(T0 + timedelta(days=14)).isoformat(),
                                tz_name="Europe/Berlin", fallback_tz="UTC", now=clock.now())  # fmt: skip
        feed = {
            e["event_id"]: e
            for e in json.loads(projection_feed(window, "all", None, clock.now(), 10_000).events_json)
        }
    entries = [
        entry for frame in frames for entry in frame.get("calendar_entries", []) if "removed" not in entry
    ]
    latest = {entry["event_id"]: entry for entry in entries}
    shown = [event_id for event_id in latest if event_id in feed]
    assert len(shown) > 300 and any(latest[eid]["run_id"] for eid in shown)
    for event_id in shown:
        assert latest[event_id] == feed[event_id], event_id


def test_a_batch_of_frames_carries_at_most_its_entry_budget_and_then_asks_for_a_refetch(monkeypatch):
    frames: list = []
    monkeypatch.setattr(projector, "_after_commit", lambda built, *rest: frames.extend(built))
    with clock.frozen(T0):
        projector.project_next_batch()
        for _ in range(20):  # 20 hourly jobs: 360 future entries each, 7,200 in one batch
            job_services.create_job(job_payload(every="1h"), None)
        projector.project_next_batch()
    carried = sum(len(frame.get("calendar_entries", [])) for frame in frames)
    assert 0 < carried <= 5_000
    assert [frame.get("calendar_refetch", False) for frame in frames] == [False] * 13 + [True] * 7
