"""A rendered calendar window is reused only while it is exactly what a fresh read would give: the same
projection version, and no future occurrence in the window passed by the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from calendar_projection import feed_cache
from calendar_projection.projector import project_next_batch
from scheduling import clock
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
URL = "/api/v1/ops/calendar/events?view=week&start=2026-06-01T00:00:00Z"


def drain() -> None:
    while project_next_batch():
        pass


def week(client) -> dict:
    response = client.get(URL)
    assert response.status_code == 200 and response.json()["path"] == "projection"
    return response.json()


def fresh(client) -> dict:
    with override_settings(UA_CALENDAR_CACHE_BYTES=0):
        return week(client)


def test_a_second_read_at_the_same_version_is_served_from_the_cache_and_equal(operator):
    with clock.frozen(T0):
        job_services.create_job(job_payload(every="1h"), None)
        drain()
        first = week(operator)
        second = week(operator)
        assert second == first == fresh(operator)
    assert feed_cache.stats()["hits"] >= 1


def test_a_new_event_or_the_clock_passing_an_occurrence_makes_a_fresh_read(operator, owner_client):
    with clock.frozen(T0):
        job_services.create_job(job_payload(every="1h"), None)
        drain()
        before = week(operator)
        job_services.create_job(job_payload(every="2h", title="second"), "alice")
        drain()
        after = week(operator)
        assert after["version"] > before["version"] and len(after["events"]) > len(before["events"])
        assert after == fresh(operator)
        # Owner scoping is part of the key: alice sees only her job's events.
        alice = week(owner_client("alice"))
        assert {event["owner_id"] for event in alice["events"]} == {"alice"}
    first_future = min(event["scheduled_at_epoch"] for event in after["events"])
    with clock.frozen(datetime.fromtimestamp(first_future, UTC) + timedelta(seconds=1)):
        moved = week(operator)
        assert moved == fresh(operator)
        assert len(moved["events"]) < len(after["events"])


def test_a_cache_of_zero_bytes_keeps_nothing(operator):
    with clock.frozen(T0), override_settings(UA_CALENDAR_CACHE_BYTES=0):
        job_services.create_job(job_payload(every="1h"), None)
        drain()
        week(operator)
        week(operator)
        assert feed_cache.stats()["entries"] == 0
