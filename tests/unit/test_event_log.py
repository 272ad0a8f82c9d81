"""The lifecycle event log and its replay endpoint (contract §4, §5)."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from scheduling import clock
from scheduling.models import CronJob, LifecycleEvent
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db


def event_types():
    return list(LifecycleEvent.objects.order_by("seq").values_list("event_type", flat=True))


def test_job_changes_append_events_with_the_contract_envelope(operator):
    job = operator.post("/api/v1/cron/jobs", job_payload(), format="json").json()["job"]
    operator.patch(f"/api/v1/cron/jobs/{job['job_id']}", {"title": "renamed"}, format="json")
    operator.delete(f"/api/v1/cron/jobs/{job['job_id']}")
    assert event_types() == ["cron_job_created", "cron_job_updated", "cron_job_deleted"]
    events = operator.get("/api/v1/ops/scheduling/events").json()["events"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    first = events[0]
    assert set(first) == {
        "seq",
        "event_type",
        "source",
        "source_ref",
        "owner_id",
        "session_id",
        "channel",
        "occurred_at_utc",
        "status",
        "payload",
    }
    assert first["source"] == "cron" and first["source_ref"] == job["job_id"]
    assert first["payload"]["job"]["command"] == job["command"]
    assert events[1]["payload"]["job"]["title"] == "renamed"


def test_a_change_that_rolls_back_leaves_no_event():
    with pytest.raises(RuntimeError), transaction.atomic():
        job_services.create_job(job_payload(), None)
        raise RuntimeError("abort")
    assert CronJob.objects.count() == 0 and LifecycleEvent.objects.count() == 0


def test_shell_style_save_outside_a_transaction_still_appends_its_event():
    now = clock.now()
    # Armed (next_run_at): an enabled recurring job without one is refused by a CHECK constraint.
    job = CronJob(
        command="c", schedule_kind="every", every_seconds=60, anchor_at=now, created_at=now, updated_at=now,
        next_run_at=now,
    )  # fmt: skip
    job.save()
    job.title = "t"
    job.save()
    job.delete()
    assert event_types() == ["cron_job_created", "cron_job_updated", "cron_job_deleted"]


def test_replay_pages_oldest_first_with_has_more_and_cursor(operator):
    for index in range(5):
        operator.post("/api/v1/cron/jobs", job_payload(title=f"j{index}"), format="json")
    page = operator.get("/api/v1/ops/scheduling/events?since_seq=0&limit=2").json()
    assert [e["seq"] for e in page["events"]] == [1, 2]
    assert page["has_more"] is True and page["next_since_seq"] == 2 and page["event_bus_seq"] == 5
    assert page["oldest_seq"] == 1 and page["projection_version"] == 0
    page = operator.get("/api/v1/ops/scheduling/events?since_seq=2&limit=5000").json()
    assert [e["seq"] for e in page["events"]] == [3, 4, 5]
    assert page["has_more"] is False and page["next_since_seq"] == 5
    empty = operator.get("/api/v1/ops/scheduling/events?since_seq=5").json()
    assert empty["events"] == [] and empty["next_since_seq"] == 5


def test_replay_limit_is_clamped_and_validated(operator):
    operator.post("/api/v1/cron/jobs", job_payload(), format="json")
    assert len(operator.get("/api/v1/ops/scheduling/events?limit=0").json()["events"]) == 1
    bad = operator.get("/api/v1/ops/scheduling/events?since_seq=abc")
    assert bad.status_code == 400 and bad.json()["field"] == "since_seq"


def test_replay_from_the_future_or_before_retention_answers_410(operator, settings):
    settings.UA_SCHED_EVENT_BUS_MAX = 100
    for index in range(201):
        job_services.create_job(job_payload(title=str(index)), None)
    bounds = operator.get("/api/v1/ops/scheduling/events?since_seq=200").json()
    assert bounds["oldest_seq"] == 101
    ahead = operator.get("/api/v1/ops/scheduling/events?since_seq=999")
    assert ahead.status_code == 410 and ahead.json()["error"] == "reset_required"
    stale = operator.get("/api/v1/ops/scheduling/events?since_seq=50")
    assert stale.status_code == 410 and stale.json()["oldest_seq"] == 101
    assert operator.get("/api/v1/ops/scheduling/events?since_seq=100").status_code == 200


def test_event_pages_render_exactly_the_python_envelopes():
    from datetime import UTC, datetime

    from scheduling.event_log import EventDraft, append_events, envelope, read_since
    from scheduling.event_pages import read_page

    append_events(
        [
            EventDraft("cron_job_created", "cron", "job_1", owner_id="a", payload={"x": [1, 2.5, None, "é"]}),
            EventDraft(
                "cron_run_started",
                "cron",
                "job_1",
                status="running",
                occurred_at=datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
            ),
            EventDraft("heartbeat_started", "heartbeat", "s1", owner_id="b", session_id="s1", channel="c"),
        ]
    )
    page = read_page(0, 2)
    assert json.loads(page.events_json) == [envelope(e) for e in read_since(0, 2)]
    assert (page.count, page.has_more, page.last_seq_in_page, page.log_last_seq) == (2, True, 2, 3)
    assert json.loads(page.events_json)[1]["occurred_at_utc"] == "2026-06-01T12:00:00Z"
    owned = read_page(0, 10, owner_id="b")
    assert [e["seq"] for e in json.loads(owned.events_json)] == [3] and not owned.has_more
