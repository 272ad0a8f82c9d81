"""GET /api/v1/ops/calendar/events (contract §6): window rules, time zones, owner scoping, occurrence
placement and bad input, on whichever path UA_SCHED_EVENT_PROJECTION_ENABLED selects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from calendar_projection.projector import project_next_batch
from scheduling import clock
from scheduling.dispatch import Outcome
from scheduling.models import CronJob
from scheduling.services import claims, outcomes
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
WEDNESDAY = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
URL = "/api/v1/ops/calendar/events"


@pytest.fixture
def wednesday():
    with clock.frozen(WEDNESDAY):
        yield WEDNESDAY


def get(client, projection: bool = True, **params) -> dict:
    while project_next_batch():
        pass
    with override_settings(UA_SCHED_EVENT_PROJECTION_ENABLED=projection):
        response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_default_week_starts_on_the_most_recent_sunday_in_the_requested_zone(operator, wednesday):
    body = get(operator, timezone_name="America/New_York")
    assert (body["start_utc"], body["end_utc"]) == ("2026-05-31T04:00:00Z", "2026-06-07T04:00:00Z")
    assert body["start_local"] == "2026-05-31T00:00:00-04:00"
    assert (body["timezone"], body["view"], body["path"]) == ("America/New_York", "week", "projection")
    for key in ("events", "always_running", "stasis_queue", "legend", "version", "last_event_at_utc"):
        assert key in body


def test_a_day_is_local_midnight_plus_24_hours_and_a_dst_day_is_25(operator):
    with clock.frozen(datetime(2026, 10, 30, 12, tzinfo=UTC)):
        body = get(operator, view="day", timezone_name="Europe/Berlin", start="2026-10-25")
        assert (body["start_utc"], body["end_utc"]) == ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")
        today = get(operator, view="day", timezone_name="Asia/Tokyo")
        assert today["start_utc"] == "2026-10-29T15:00:00Z"


def test_start_and_end_take_epoch_iso_with_offset_and_naive_local_times(operator, wednesday):
    epoch = get(operator, start=str(WEDNESDAY.timestamp()), end=str(WEDNESDAY.timestamp() + 3600))
    assert (epoch["start_utc"], epoch["end_utc"]) == ("2026-06-03T12:00:00Z", "2026-06-03T13:00:00Z")
    offset = get(operator, start="2026-06-03T10:00:00+02:00", view="day")
    assert (offset["start_utc"], offset["end_utc"]) == ("2026-06-03T08:00:00Z", "2026-06-04T08:00:00Z")
    naive = get(operator, start="2026-06-03T10:00:00", view="day", timezone_name="Asia/Kolkata")
    assert naive["start_utc"] == "2026-06-03T04:30:00Z"


def test_the_window_is_clamped_to_thirty_days_back_and_fourteen_ahead(operator, wednesday):
    body = get(operator, start="2026-01-01T00:00:00Z", end="2027-01-01T00:00:00Z")
    assert body["start_utc"] == clock.iso(WEDNESDAY - timedelta(days=30))
    assert body["end_utc"] == clock.iso(WEDNESDAY + timedelta(days=14))


def test_an_unknown_time_zone_falls_back_to_the_default_zone(operator, wednesday):
    body = get(operator, timezone_name="Mars/Olympus_Mons")
    assert body["timezone"] == "UTC" and body["start_utc"] == "2026-05-31T00:00:00Z"


@pytest.mark.parametrize(
    "params, field",
    [({"start": "yesterday-ish"}, "start"), ({"end": "nope"}, "end"), ({"view": "month"}, "view"),
     ({"source": "mail"}, "source"), ({"start": "2026-06-03T00:00Z", "end": "2026-06-02T00:00Z"}, "end"),
     ({"start": "nan"}, "start")],
)  # fmt: skip
def test_bad_parameters_answer_400_naming_the_field(operator, wednesday, params, field):
    response = operator.get(URL, params)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_an_owner_token_sees_only_its_own_rows_and_an_operator_may_filter_by_owner(
    operator, alice, wednesday
):
    operator.post("/api/v1/cron/jobs", job_payload(user_id="bob", title="bob's"), format="json")
    alice.post("/api/v1/cron/jobs", job_payload(title="alice's"), format="json")
    mine = get(alice, owner="bob")  # an owner token cannot look at someone else's calendar
    assert {event["title"] for event in mine["events"]} == {"alice's"}
    assert {event["owner_id"] for event in get(operator, owner="bob")["events"]} == {"bob"}
    assert {event["title"] for event in get(operator)["events"]} == {"alice's", "bob's"}
    assert mine["events"] and get(alice, projection=False)["events"] == mine["events"]


def test_interval_occurrences_sit_exactly_where_the_scheduler_fires_them(operator, wednesday):
    with clock.frozen(WEDNESDAY + timedelta(minutes=7, seconds=13)):
        operator.post("/api/v1/cron/jobs", job_payload(every="90m"), format="json")
        job = CronJob.objects.get()
        events = get(operator, view="day", start="2026-06-03")["events"]
        assert events[0]["scheduled_at_utc"] == clock.iso(job.next_run_at)
        assert [e["scheduled_at_epoch"] for e in events[:3]] == [
            job.next_run_at.timestamp() + k * 5400 for k in range(3)
        ]
        first = events[0]
    with clock.frozen(job.next_run_at):
        started, _ = claims.claim_due_occurrences(job.next_run_at, "w", 10)
        event = get(operator, view="day", start="2026-06-03")["events"][0]
        assert (event["event_id"], event["status"], event["running"]) == (first["event_id"], "running", True)
        outcomes.record_outcomes([(started[0].run_id, Outcome("success"))], job.next_run_at)
        done = get(operator, view="day", start="2026-06-03")["events"][0]
        assert (done["event_id"], done["status"], done["run_status"]) == (
            first["event_id"],
            "success",
            "success",
        )
        assert done["actions"] == [] and first["actions"] == ["run_now", "pause", "disable"]


def test_cron_occurrences_follow_the_jobs_zone_across_a_dst_change(operator):
    with clock.frozen(datetime(2026, 10, 30, 12, tzinfo=UTC)):
        body = job_payload(every=None, cron_expr="30 1 * * *", timezone="America/Chicago")
        operator.post("/api/v1/cron/jobs", body, format="json")
        body = get(operator, timezone_name="America/Chicago", start="2026-11-01")
        times = [event["scheduled_at_local"] for event in body["events"]][:2]
        assert times == ["2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-06:00"]


def test_a_job_with_more_than_the_limit_in_the_window_shows_once_as_always_running(operator, wednesday):
    operator.post("/api/v1/cron/jobs", job_payload(every="20m", title="dense"), format="json")
    week = get(operator, start="2026-06-03T12:00:00Z")  # a week of every 20 minutes: 504
    assert week["events"] == [] and len(week["always_running"]) == 1
    dense = week["always_running"][0]
    assert (dense["title"], dense["always_running"], dense["every_seconds"]) == ("dense", True, 1200)
    assert dense["count"] > 400 and dense["status"] == "scheduled"
    day = get(operator, view="day")
    assert day["always_running"] == [] and len(day["events"]) == 35  # 12:20 .. 23:40
    assert (
        get(operator, projection=False, start="2026-06-03T12:00:00Z")["always_running"]
        == week["always_running"]
    )


def test_disabled_jobs_show_disabled_occurrences_offering_resume(operator, wednesday):
    job = operator.post("/api/v1/cron/jobs", job_payload(every="6h"), format="json").json()["job"]
    operator.patch(f"/api/v1/cron/jobs/{job['job_id']}", {"enabled": False}, format="json")
    events = get(operator)["events"]
    assert events and {e["status"] for e in events} == {"disabled"}
    assert events[0]["actions"] == ["run_now", "resume", "disable"]


def test_history_survives_the_deletion_of_its_job(operator, wednesday):
    job = operator.post("/api/v1/cron/jobs", job_payload(every="1h"), format="json").json()["job"]
    due = WEDNESDAY + timedelta(hours=1)
    with clock.frozen(due):
        started, _ = claims.claim_due_occurrences(due, "w", 10)
        outcomes.record_outcomes([(started[0].run_id, Outcome("error", error="boom"))], due)
        operator.delete(f"/api/v1/cron/jobs/{job['job_id']}")
        for projection in (True, False):
            events = get(operator, projection=projection)["events"]
            assert [(e["status"], e["title"]) for e in events] == [("failed", "inbox digest")]
