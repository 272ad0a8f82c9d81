"""Heartbeat REST API (contract §3), on whichever database the run uses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduling.models import HeartbeatSession, LifecycleEvent, SystemEvent, WakeRequest
from scheduling.services import heartbeat_runs

pytestmark = pytest.mark.django_db

SESSIONS = "/api/v1/heartbeat/sessions"


def put_session(client, session_id="s-1", **config):
    response = client.put(f"{SESSIONS}/{session_id}", config, format="json")
    assert response.status_code == 200, response.content
    return response.json()["session"]


def test_put_creates_a_session_with_the_contract_defaults(operator, frozen_now):
    session = put_session(operator)
    assert session["session_id"] == "s-1" and session["every_seconds"] == 1800
    assert session["enabled"] is True and session["timezone"] == "UTC" and session["active_hours"] is None
    assert session["delivery"] == {"mode": "last", "targets": []}
    assert session["visibility"] == {"show_ok": False, "show_alerts": True, "dedupe_window_seconds": 86400}
    assert session["next_due_at"] == (frozen_now + timedelta(minutes=30)).timestamp()
    assert session["next_due_at_utc"] == "2026-06-01T12:30:00Z"


def test_put_changes_only_the_given_fields(operator):
    put_session(operator, every="1h", active_hours="09:00-17:00", channel="slack:#ops")
    session = put_session(
        operator, enabled=False, target={"type": "webhook", "url": "https://x.test/h", "secret": "k"}
    )
    assert session["every_seconds"] == 3600 and session["active_hours"] == "09:00-17:00"
    assert session["enabled"] is False and session["next_due_at"] is None
    assert session["target"]["secret"] == "***" and session["channel"] == "slack:#ops"


def test_get_and_list_and_delete_sessions(operator):
    put_session(operator, "b")
    put_session(operator, "a")
    assert operator.get(f"{SESSIONS}/a").json()["session"]["session_id"] == "a"
    assert [s["session_id"] for s in operator.get(SESSIONS).json()["sessions"]] == ["a", "b"]
    assert operator.delete(f"{SESSIONS}/a").json() == {"status": "deleted", "session_id": "a"}
    assert operator.get(f"{SESSIONS}/a").status_code == 404


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"every": "30s"}, "every"),
        ({"every": "whenever"}, "every"),
        ({"active_hours": "9am-5pm"}, "active_hours"),
        ({"active_hours": "09:00-25:00"}, "active_hours"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"enabled": "yes"}, "enabled"),
        ({"delivery": {"mode": "pigeon"}}, "delivery"),
        ({"delivery": "last"}, "delivery"),
        ({"visibility": {"show_ok": 1}}, "visibility"),
        ({"target": {"type": "webhook", "url": "ftp://x"}}, "target.url"),
        ({"session_id": "other"}, "session_id"),
    ],
)
def test_bad_session_config_answers_400_naming_the_field_and_writes_nothing(operator, config, field):
    response = operator.put(f"{SESSIONS}/s-1", config, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid" and body["field"] == field and body["detail"]
    assert not HeartbeatSession.objects.exists() and not LifecycleEvent.objects.exists()


def test_bad_update_leaves_the_session_unchanged(operator):
    put_session(operator, every="1h")
    events = LifecycleEvent.objects.count()
    response = operator.put(f"{SESSIONS}/s-1", {"every": "2h", "active_hours": "nope"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "active_hours"
    assert HeartbeatSession.objects.get().every_seconds == 3600 and LifecycleEvent.objects.count() == events


def test_non_object_body_answers_400(operator):
    response = operator.put(f"{SESSIONS}/s-1", [1, 2], format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_owner_tokens_see_and_change_only_their_own_sessions(operator, alice, owner_client):
    bob = owner_client("bob")
    assert put_session(alice, "mine")["owner_id"] == "alice"
    put_session(operator, "theirs", owner_id="bob")
    assert [s["session_id"] for s in alice.get(SESSIONS).json()["sessions"]] == ["mine"]
    for request in (
        lambda: alice.get(f"{SESSIONS}/theirs"),
        lambda: alice.put(f"{SESSIONS}/theirs", {"every": "1h"}, format="json"),
        lambda: alice.delete(f"{SESSIONS}/theirs"),
        lambda: alice.post(f"{SESSIONS}/theirs/busy", {"busy": True}, format="json"),
        lambda: alice.post("/api/v1/heartbeat/wake", {"session_id": "theirs", "mode": "now"}, format="json"),
        lambda: alice.get("/api/v1/heartbeat/last?session_id=theirs"),
        lambda: alice.post("/api/v1/system/event", {"session_id": "theirs", "text": "hi"}, format="json"),
        lambda: alice.get("/api/v1/system/events?session_id=theirs"),
    ):
        assert request().status_code == 404
    assert HeartbeatSession.objects.get(session_id="theirs").every_seconds == 1800
    assert bob.get(f"{SESSIONS}/theirs").status_code == 200


def test_owner_token_cannot_create_a_session_for_someone_else(alice):
    response = alice.put(f"{SESSIONS}/s-1", {"owner_id": "bob"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "owner_id"


def test_requests_without_a_token_answer_401(client):
    assert client.get(SESSIONS).status_code == 401


def test_busy_flag_is_set_and_validated(operator):
    put_session(operator)
    response = operator.post(f"{SESSIONS}/s-1/busy", {"busy": True}, format="json")
    assert response.status_code == 200 and response.json()["session"]["busy"] is True
    response = operator.post(f"{SESSIONS}/s-1/busy", {"busy": "yes"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "busy"


def test_wake_queues_the_named_session_or_every_visible_one(operator, alice, frozen_now):
    put_session(operator, "s-1")
    put_session(alice, "s-2")
    response = operator.post("/api/v1/heartbeat/wake", {"session_id": "s-1", "mode": "now"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"status": "queued", "mode": "now", "session_ids": ["s-1"]}
    assert HeartbeatSession.objects.get(session_id="s-1").next_due_at == frozen_now
    response = alice.post("/api/v1/heartbeat/wake", {"mode": "next", "reason": "inbox"}, format="json")
    assert response.json()["session_ids"] == ["s-2"]
    assert WakeRequest.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [({"mode": "later"}, "mode"), ({}, "mode"), ({"mode": "now", "reason": 5}, "reason")],
)
def test_bad_wake_answers_400_naming_the_field(operator, body, field):
    put_session(operator)
    response = operator.post("/api/v1/heartbeat/wake", body, format="json")
    assert response.status_code == 400 and response.json()["field"] == field
    assert not WakeRequest.objects.exists()


def test_last_heartbeat_has_the_contract_shape(operator, frozen_now):
    put_session(operator)
    response = operator.get("/api/v1/heartbeat/last?session_id=s-1")
    assert response.status_code == 200
    body = response.json()
    assert {"session_id", "last_run", "last_summary", "busy"} <= set(body)
    assert body["last_run"] is None and body["last_summary"] is None and body["busy"] is False
    due = frozen_now + timedelta(minutes=30)
    [run] = heartbeat_runs.claim_due_heartbeats(due, "worker-1", 30)
    heartbeat_runs.finish_heartbeat(run.run_id, "success", "HEARTBEAT_OK", "", due)
    body = operator.get("/api/v1/heartbeat/last?session_id=s-1").json()
    assert body["last_run"]["run_id"] == run.run_id and body["last_run"]["status"] == "success"
    assert body["last_summary"]["ok_only"] is True and body["last_summary"]["sent"] is False
    assert body["last_summary"]["suppressed_reason"] == "ok_suppressed"


def test_last_heartbeat_needs_a_session_id(operator):
    response = operator.get("/api/v1/heartbeat/last")
    assert response.status_code == 400 and response.json()["field"] == "session_id"


def test_system_events_are_queued_and_listed_newest_first(operator, frozen_now):
    put_session(operator)
    response = operator.post(
        "/api/v1/system/event", {"session_id": "s-1", "text": "job A done"}, format="json"
    )
    assert response.status_code == 201
    event = response.json()["event"]
    assert event["text"] == "job A done" and event["status"] == "pending" and event["delivered_at"] is None
    operator.post("/api/v1/system/event", {"session_id": "s-1", "text": "job B done"}, format="json")
    listed = operator.get("/api/v1/system/events?session_id=s-1").json()["events"]
    assert [e["text"] for e in listed] == ["job B done", "job A done"]
    assert len(operator.get("/api/v1/system/events?session_id=s-1&limit=1").json()["events"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "hi"}, "session_id"),
        ({"session_id": "s-1"}, "text"),
        ({"session_id": "s-1", "text": 3}, "text"),
    ],
)
def test_bad_system_event_answers_400_naming_the_field(operator, body, field):
    put_session(operator)
    response = operator.post("/api/v1/system/event", body, format="json")
    assert response.status_code == 400 and response.json()["field"] == field
    assert not SystemEvent.objects.exists()


def test_system_event_list_rejects_a_bad_limit(operator):
    response = operator.get("/api/v1/system/events?limit=many")
    assert response.status_code == 400 and response.json()["field"] == "limit"


def test_post_creates_a_session_named_in_the_body_once(operator, frozen_now):
    response = operator.post(SESSIONS, {"session_id": "s-1", "every": "1h"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["session"]["session_id"] == "s-1"
    assert response.json()["session"]["every_seconds"] == 3600
    events = LifecycleEvent.objects.count()
    again = operator.post(SESSIONS, {"session_id": "s-1", "every": "2h"}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert HeartbeatSession.objects.get().every_seconds == 3600 and LifecycleEvent.objects.count() == events


@pytest.mark.parametrize("body", [{"every": "1h"}, {"session_id": ""}, {"session_id": 7}])
def test_post_without_a_session_id_answers_400_naming_it(operator, body):
    response = operator.post(SESSIONS, body, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "session_id" and response.json()["error"] == "invalid"
    assert not HeartbeatSession.objects.exists() and not LifecycleEvent.objects.exists()


def test_owner_token_posts_a_session_under_its_own_owner_id(alice):
    response = alice.post(SESSIONS, {"session_id": "mine"}, format="json")
    assert response.status_code == 201 and response.json()["session"]["owner_id"] == "alice"


def test_system_event_accepts_the_v1_body_with_the_text_in_payload(operator):
    put_session(operator)
    body = {"session_id": "s-1", "event_type": "job_done", "payload": {"text": "job A done"}}
    response = operator.post("/api/v1/system/event", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["event"]["text"] == "job A done"
    assert SystemEvent.objects.get().text == "job A done"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"session_id": "s-1", "payload": {"text": ""}}, "text"),
        ({"session_id": "s-1", "payload": {"other": "x"}}, "text"),
        ({"session_id": "s-1", "payload": "job A done"}, "payload"),
    ],
)
def test_v1_system_event_without_usable_text_answers_400(operator, body, field):
    put_session(operator)
    response = operator.post("/api/v1/system/event", body, format="json")
    assert response.status_code == 400 and response.json()["field"] == field
    assert not SystemEvent.objects.exists()
