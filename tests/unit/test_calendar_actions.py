"""Calendar actions (contract §7) over HTTP: every action, its errors, owner scoping, the notification
links, and that a refused or failed action changes nothing. Runs on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling import clock, metrics
from scheduling.metrics_report import read_report
from scheduling.models import CronJob, CronRun, HeartbeatSession, Notification, StasisEntry, WakeRequest
from scheduling.services import claims, stasis
from tests.conftest import job_payload
from tests.unit.test_bad_input_never_500 import db_state

pytestmark = pytest.mark.django_db
API = "/api/v1"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=3)


@pytest.fixture(autouse=True)
def _clock_at_t0():
    with clock.frozen(T0):
        yield


def url(event_id: str, tail: str = "action") -> str:
    return f"{API}/ops/calendar/events/{event_id}/{tail}"


def act(client, event_id, action, **body):
    return client.post(url(event_id), {"action": action, **body}, format="json")


def new_job(client, **overrides) -> dict:
    response = client.post(f"{API}/cron/jobs", job_payload(**overrides), format="json")
    assert response.status_code == 201, response.content
    return response.json()["job"]


def missed_event(job_id: str) -> str:
    """Let the hourly job miss its 13:00 and 14:00 occurrences; the clock is then at 15:00 (LATER)."""
    clock.set_frozen(T0 + timedelta(hours=2, minutes=30))
    claims.claim_due_occurrences(clock.now(), "scheduler:test", 100)
    clock.set_frozen(LATER)
    return StasisEntry.objects.get(source_ref=job_id, status="pending").event_id


def test_approve_backfill_run_queues_the_original_occurrence_and_resolves_the_entry(operator):
    job = new_job(operator)
    event_id = missed_event(job["job_id"])
    response = act(operator, event_id, "approve_backfill_run")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["action"], body["event_id"]) == ("ok", "approve_backfill_run", event_id)
    assert body["entry"]["status"] == "approved_and_run" and body["entry"]["event_id"] == event_id
    run = body["run"]
    assert (run["status"], run["reason"], run["attempt"]) == ("queued", "backfill", 2)
    assert run["scheduled_at"] == float(event_id.rsplit("|", 1)[1])
    assert body["entry"]["resolution_run_id"] == run["run_id"]


def test_reschedule_makes_a_one_shot_copy_at_run_at_in_the_given_time_zone(operator):
    job = new_job(operator)
    event_id = missed_event(job["job_id"])
    response = act(operator, event_id, "reschedule", run_at="tomorrow 9:15am", timezone="Europe/Berlin")
    assert response.status_code == 200, response.content
    body = response.json()
    copy = body["job"]
    assert body["entry"]["status"] == "rescheduled"
    assert copy["schedule_kind"] == "at" and copy["delete_after_run"] is True
    assert copy["metadata"]["backfill_for_job_id"] == job["job_id"]
    assert copy["run_at"] == "2026-06-02T07:15:00Z"  # 09:15 CEST


def test_reschedule_defaults_to_an_hour_from_now_and_delete_missed_resolves(operator):
    first, second = new_job(operator), new_job(operator)
    rescheduled, deleted = missed_event(first["job_id"]), missed_event(second["job_id"])
    copy = act(operator, rescheduled, "reschedule").json()["job"]
    assert copy["run_at"] == clock.iso(LATER + timedelta(hours=1))
    response = act(operator, deleted, "delete_missed")
    assert response.status_code == 200 and response.json()["entry"]["status"] == "deleted"
    assert "job" not in response.json() and "run" not in response.json()


def test_a_resolved_entry_never_resurfaces_and_a_second_stasis_action_is_409(operator):
    job = new_job(operator)
    event_id = missed_event(job["job_id"])
    assert act(operator, event_id, "delete_missed").status_code == 200
    for action in ("approve_backfill_run", "reschedule", "delete_missed"):
        before = db_state()
        response = act(operator, event_id, action)
        assert response.status_code == 409 and response.json()["field"] == "event_id"
        assert "already deleted" in response.json()["detail"]
        assert db_state() == before
    pending = operator.get(f"{API}/ops/stasis").json()["stasis_queue"]
    assert event_id not in [entry["event_id"] for entry in pending]


def test_a_stasis_action_on_an_occurrence_that_was_never_missed_is_409(operator):
    job = new_job(operator)
    never_missed = f"cron|{job['job_id']}|{int((T0 + timedelta(hours=1)).timestamp())}"
    response = act(operator, never_missed, "approve_backfill_run")
    assert response.status_code == 409 and response.json()["field"] == "event_id"


def test_run_now_pause_resume_and_disable_act_on_the_job(operator):
    job = new_job(operator)
    event_id = f"cron|{job['job_id']}|{int((T0 + timedelta(hours=1)).timestamp())}"
    run = act(operator, event_id, "run_now").json()["run"]
    assert (run["status"], run["reason"], run["job_id"]) == ("queued", "calendar_action", job["job_id"])
    paused = act(operator, event_id, "pause").json()["job"]
    assert paused["enabled"] is False and paused["next_run_at"] is None
    resumed = act(operator, event_id, "resume").json()["job"]
    assert resumed["enabled"] is True and resumed["next_run_at"] is not None
    assert act(operator, event_id, "disable").json()["job"]["enabled"] is False
    assert CronJob.objects.get(job_id=job["job_id"]).enabled is False


def test_heartbeat_events_wake_now_and_pause_resume_the_session(operator):
    operator.put(f"{API}/heartbeat/sessions/s-1", {"every": "1h"}, format="json")
    event_id = f"heartbeat|s-1|{int((T0 + timedelta(hours=1)).timestamp())}"
    woken = act(operator, event_id, "run_now")
    assert woken.status_code == 200 and woken.json()["session"]["pending_wake"] == "now"
    assert WakeRequest.objects.get(session_id="s-1").mode == "now"
    assert act(operator, event_id, "pause").json()["session"]["enabled"] is False
    assert act(operator, event_id, "resume").json()["session"]["enabled"] is True
    assert act(operator, event_id, "approve_backfill_run").status_code == 409  # heartbeats never enter stasis


@pytest.mark.parametrize(
    ("event_id", "body", "field"),
    [
        ("cron|{job}|1780318800", {"action": "explode"}, "action"),
        ("cron|{job}|1780318800", {}, "action"),
        ("cron|{job}|1780318800", {"action": ["run_now"]}, "action"),
        ("cron|{job}|1780318800", {"action": "reschedule", "run_at": "📅"}, "run_at"),
        ("cron|{job}|1780318800", {"action": "reschedule", "run_at": []}, "run_at"),
        ("cron|{job}|1780318800", {"action": "reschedule", "timezone": "Mars/Olympus"}, "timezone"),
        ("cron|{job}|1780318800", {"action": "pause", "timezone": 7}, "timezone"),
        ("nope", {"action": "run_now"}, "event_id"),
        ("cron|{job}", {"action": "run_now"}, "event_id"),
        ("cron||1780318800", {"action": "run_now"}, "event_id"),
        ("bogus|{job}|1780318800", {"action": "run_now"}, "event_id"),
        ("cron|{job}|soon", {"action": "run_now"}, "event_id"),
        ("cron|{job}|1.5", {"action": "run_now"}, "event_id"),
    ],
)
def test_an_unknown_action_or_malformed_event_id_is_a_400_naming_it_that_writes_nothing(
    operator, event_id, body, field
):
    job = new_job(operator)
    before = db_state()
    response = operator.post(url(event_id.format(job=job["job_id"])), body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert db_state() == before


def test_an_unknown_job_or_session_is_a_404(operator):
    for event_id in ("cron|job_missing|1780318800", "heartbeat|nobody|1780318800"):
        for action in ("run_now", "pause", "delete_missed"):
            response = act(operator, event_id, action)
            assert response.status_code == 404, (event_id, action, response.content)
    assert not HeartbeatSession.objects.exists()  # pause never creates the session it could not find


def test_owner_tokens_act_only_on_their_own_events(operator, owner_client):
    alice, bob = owner_client("alice"), owner_client("bob")
    hers, his = new_job(alice), new_job(bob)
    her_event, his_event = missed_event(hers["job_id"]), missed_event(his["job_id"])
    before = db_state()
    for action in ("approve_backfill_run", "reschedule", "delete_missed", "run_now", "pause"):
        assert act(alice, his_event, action).status_code == 404
    assert db_state() == before
    copy = act(alice, her_event, "reschedule").json()["job"]
    assert copy["user_id"] == "alice"
    assert act(operator, his_event, "delete_missed").status_code == 200


def test_the_links_a_miss_notification_carries_resolve_the_entry_and_the_notification(operator):
    job = new_job(operator)
    event_id = missed_event(job["job_id"])
    [notice] = operator.get(f"{API}/ops/notifications").json()["notifications"]
    assert [a["action"] for a in notice["actions"]] == ["approve_backfill_run", "reschedule", "delete_missed"]
    link = notice["actions"][0]
    assert link["method"] == "POST" and link["url"] == url(event_id)
    response = operator.post(link["url"], {"action": link["action"]}, format="json")
    assert response.status_code == 200 and response.json()["entry"]["status"] == "approved_and_run"
    assert operator.get(f"{API}/ops/notifications").json()["notifications"] == []
    resolved = operator.get(f"{API}/ops/notifications?status=resolved").json()["notifications"]
    assert [n["notification_id"] for n in resolved] == [notice["notification_id"]]


def test_a_failure_notification_link_runs_the_job_now(operator):
    job = new_job(operator)
    run = CronRun.for_job(CronJob.objects.get(job_id=job["job_id"]), reason="manual")
    run.status, run.started_at, run.finished_at, run.error = "error", T0, T0, "boom"
    run.save(force_insert=True)
    from scheduling.services.notifications import notify_failure

    notify_failure(CronJob.objects.get(job_id=job["job_id"]), run)
    [link] = Notification.objects.get(kind="run_failed").actions
    response = operator.post(link["url"], {"action": link["action"]}, format="json")
    assert response.status_code == 200 and response.json()["run"]["status"] == "queued"


def test_a_notification_resolves_whichever_surface_resolves_its_entry(operator):
    first, second = new_job(operator), new_job(operator)
    missed_event(first["job_id"])
    missed_event(second["job_id"])
    admin_entry = StasisEntry.objects.get(source_ref=first["job_id"], status="pending")
    stasis.delete_missed(admin_entry.entry_id)  # what the admin action calls
    # A newer miss supersedes the second job's entry, and with it the notification for the old one.
    old = StasisEntry.objects.get(source_ref=second["job_id"], status="pending")
    clock.set_frozen(T0 + timedelta(hours=5, minutes=30))
    claims.claim_due_occurrences(clock.now(), "scheduler:test", 100)
    assert Notification.objects.get(run_id=admin_entry.run_id).status == "resolved"
    live = Notification.objects.filter(status="live", source_ref=second["job_id"])
    assert [n.run_id for n in live] == [
        StasisEntry.objects.get(source_ref=second["job_id"], status="pending").run_id
    ]
    assert Notification.objects.get(run_id=old.run_id).status == "resolved"


def test_a_failed_action_changes_nothing(operator):
    job = new_job(operator, overlap="skip")
    event_id = missed_event(job["job_id"])
    operator.post(f"{API}/cron/jobs/{job['job_id']}/run")  # a queued run: the job counts as running
    before = db_state()
    refused = act(operator, event_id, "approve_backfill_run")
    assert refused.status_code == 409 and db_state() == before
    past = act(operator, event_id, "reschedule", run_at=clock.iso(T0))
    assert past.status_code == 400 and past.json()["field"] == "run_at"
    assert db_state() == before
    assert StasisEntry.objects.get(event_id=event_id).status == "pending"


def test_action_requests_are_counted(operator):
    job = new_job(operator)
    event_id = f"cron|{job['job_id']}|1780318800"
    act(operator, event_id, "pause")
    act(operator, event_id, "explode")
    metrics.flush()
    assert read_report().counters()["calendar_action_requests"] == 2
