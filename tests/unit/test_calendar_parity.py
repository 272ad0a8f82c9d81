"""Projection against scan over a realistic mix (tests/calendar_mix.py): the same calendar either way.
Runs on SQLite and, with DATABASE_URL set, on PostgreSQL (where the projection renders JSON in SQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from calendar_projection.projector import project_next_batch, roll_forward
from scheduling import clock
from tests.calendar_mix import NOW, START, Mix

pytestmark = pytest.mark.django_db

WINDOWS = [
    {},
    {"view": "day"},
    {"timezone_name": "Europe/Berlin", "start": "2026-10-25"},  # the Berlin fall-back week, history
    {"timezone_name": "America/Chicago", "start": "2026-11-01T00:00:00"},  # Chicago's, all future
    {"timezone_name": "Asia/Kolkata", "view": "day", "start": "2026-10-26"},  # the downtime day
    {"start": str(NOW.timestamp() - 30 * 86400), "end": str(NOW.timestamp() + 14 * 86400)},
    {"source": "cron"},
    {"source": "heartbeat", "timezone_name": "Europe/Berlin"},
    {"owner": "alice"},
    {"owner": "bob", "view": "day", "start": "2026-10-26T00:00:00Z"},
]


def drain() -> None:
    while project_next_batch():
        pass


def feed(client, params: dict, projection: bool) -> dict:
    with override_settings(UA_SCHED_EVENT_PROJECTION_ENABLED=projection):
        response = client.get("/api/v1/ops/calendar/events", params)
    assert response.status_code == 200, response.content
    return response.json()


def keys(body: dict) -> set[tuple[str, str]]:
    return {(event["event_id"], event["status"]) for event in body["events"] + body["always_running"]}


@pytest.fixture
def mix_calendar() -> None:
    with clock.frozen(START - timedelta(hours=1)):
        project_next_batch()  # the first start builds the (empty) projection
    Mix(on_step=project_next_batch).build()
    clock.set_frozen(NOW)
    drain()
    while roll_forward():
        pass


def test_projection_and_scan_show_the_same_calendar_for_a_realistic_mix(operator, mix_calendar):
    for params in WINDOWS:
        projected, scanned = feed(operator, params, True), feed(operator, params, False)
        assert (projected["path"], scanned["path"]) == ("projection", "scan")
        assert keys(projected) == keys(scanned), params
        assert projected["events"] == scanned["events"], params
        assert projected["always_running"] == scanned["always_running"], params
        assert projected["stasis_queue"] == scanned["stasis_queue"], params
        assert projected["start_utc"] == scanned["start_utc"] and projected["end_utc"] == scanned["end_utc"]

    whole = feed(operator, WINDOWS[0], True)  # this week: Sunday 2026-10-25 .. 2026-11-01
    statuses = {event["status"] for event in whole["events"]}
    expected = {"scheduled", "running", "success", "failed", "missed", "skipped", "disabled"}
    assert statuses >= expected, statuses
    titles = {event["title"] for event in whole["events"]}
    assert "doomed" in titles  # a deleted job's history stays
    assert [item["title"] for item in whole["always_running"]] == ["dense"]
    assert len(whole["stasis_queue"]) >= 2
    assert all(entry["status"] == "pending" for entry in whole["stasis_queue"])
