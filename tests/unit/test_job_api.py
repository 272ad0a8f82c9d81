"""Cron job REST API (contract §2), on whichever database the run uses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduling import clock
from scheduling.models import CronJob, CronRun, LifecycleEvent
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db


def create(client, **overrides):
    response = client.post("/api/v1/cron/jobs", job_payload(**overrides), format="json")
    assert response.status_code == 201, response.content
    return response.json()["job"]


def test_create_job_returns_wrapped_job_with_next_run(operator, frozen_now):
    job = create(operator, every="30m")
    assert job["job_id"].startswith("job_")
    assert job["every_seconds"] == 1800
    assert job["next_run_at"] == (frozen_now + timedelta(minutes=30)).timestamp()
    assert job["next_run_at_utc"] == "2026-06-01T12:30:00Z"
    assert job["running"] is False and job["last_run"] is None
    assert job["target"] == {"type": "handler", "name": "echo"}
    assert job["wake_heartbeat"] == "off"


def test_session_bound_job_defaults_to_waking_next_heartbeat(operator):
    assert create(operator, session_id="s-1")["wake_heartbeat"] == "next"


def test_schedule_precedence_is_run_at_then_cron_then_every(operator, frozen_now):
    job = create(operator, run_at="20m", cron_expr="0 9 * * *", every="1h")
    assert job["schedule_kind"] == "at"
    assert job["next_run_at"] == (frozen_now + timedelta(minutes=20)).timestamp()
    job = create(operator, cron_expr="0 9 * * *", every="1h")
    assert job["schedule_kind"] == "cron" and job["every_seconds"] is None


def test_run_at_natural_time_is_read_in_the_job_time_zone(operator, frozen_now):
    # 2026-06-01 12:00 UTC is 07:00 in Chicago (CDT, UTC-5): "tomorrow 9:15am" is 06-02 14:15 UTC.
    job = create(operator, run_at="tomorrow 9:15am", timezone="America/Chicago")
    assert job["next_run_at_utc"] == "2026-06-02T14:15:00Z"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"every": None}, "schedule"),
        ({"every": "fortnightly"}, "every"),
        ({"every": "30s"}, "every"),
        ({"every": None, "cron_expr": "61 * * * *"}, "cron_expr"),
        ({"every": None, "run_at": "whenever you like"}, "run_at"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"command": ""}, "command"),
        ({"priority": "urgent"}, "priority"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 86401}, "timeout_seconds"),
        ({"enabled": "yes"}, "enabled"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"target": {"type": "webhook", "url": "ftp://x"}}, "target.url"),
        ({"target": {"type": "handler", "name": "nope"}}, "target.name"),
        ({"target": {"type": "carrier-pigeon"}}, "target.type"),
    ],
)
def test_bad_job_input_answers_400_naming_the_field_and_writes_nothing(operator, overrides, field):
    response = operator.post("/api/v1/cron/jobs", job_payload(**overrides), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid" and body["field"] == field and body["detail"]
    assert CronJob.objects.count() == 0 and LifecycleEvent.objects.count() == 0


def test_malformed_json_answers_400(operator):
    response = operator.generic("POST", "/api/v1/cron/jobs", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "invalid_json"


def test_body_that_is_not_an_object_answers_400(operator):
    response = operator.post("/api/v1/cron/jobs", [1, 2], format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_payload_over_64_kib_answers_413(operator):
    response = operator.post("/api/v1/cron/jobs", job_payload(command="x" * 70_000), format="json")
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"
    assert CronJob.objects.count() == 0


def test_min_interval_follows_the_setting(operator, settings):
    settings.UA_CRON_MIN_INTERVAL_SECONDS = 10
    assert create(operator, every="15s")["every_seconds"] == 15


def test_patch_that_fails_changes_nothing(operator):
    job = create(operator)
    before = LifecycleEvent.objects.count()
    response = operator.patch(
        f"/api/v1/cron/jobs/{job['job_id']}", {"title": "new", "cron_expr": "bad"}, format="json"
    )
    assert response.status_code == 400 and response.json()["field"] == "cron_expr"
    stored = CronJob.objects.get(job_id=job["job_id"])
    assert stored.title == "inbox digest" and stored.every_seconds == 3600
    assert LifecycleEvent.objects.count() == before


def test_patch_merges_metadata_and_replaces_schedule(operator, frozen_now):
    job = create(operator, metadata={"a": 1, "b": 2})
    response = operator.patch(
        f"/api/v1/cron/jobs/{job['job_id']}", {"metadata": {"b": 3}, "cron_expr": "0 9 * * *"}, format="json"
    )
    assert response.status_code == 200
    updated = response.json()["job"]
    assert updated["metadata"] == {"a": 1, "b": 3}
    assert updated["schedule_kind"] == "cron" and updated["every_seconds"] is None
    assert updated["next_run_at_utc"] == "2026-06-02T09:00:00Z"


def test_put_replaces_fields_and_merges_metadata(operator):
    job = create(operator, metadata={"a": 1}, title="old")
    response = operator.put(
        f"/api/v1/cron/jobs/{job['job_id']}",
        {"command": "new command", "every": "2h", "metadata": {"b": 2}},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()["job"]
    assert body["command"] == "new command" and body["every_seconds"] == 7200
    assert body["metadata"] == {"a": 1, "b": 2}


def test_put_changes_only_the_fields_it_names_like_patch(operator, frozen_now):
    # Contract §2 clarified: V1 clients send PUT {"enabled": false}; it pauses the job and keeps the rest.
    job = create(operator, every="30m", title="keep me")
    response = operator.put(f"/api/v1/cron/jobs/{job['job_id']}", {"enabled": False}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()["job"]
    assert body["enabled"] is False and body["next_run_at"] is None
    assert body["title"] == "keep me" and body["every_seconds"] == 1800 and body["command"] == job["command"]
    response = operator.put(f"/api/v1/cron/jobs/{job['job_id']}", {"command": "x"}, format="json")
    assert response.status_code == 200 and response.json()["job"]["every_seconds"] == 1800


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_a_misspelt_field_answers_400_naming_it_and_writes_nothing(operator, method):
    job = create(operator) if method != "post" else None
    url = "/api/v1/cron/jobs" + (f"/{job['job_id']}" if job else "")
    before = (CronJob.objects.count(), LifecycleEvent.objects.count())
    response = getattr(operator, method)(url, job_payload(timzone="Europe/Berlin"), format="json")
    assert response.status_code == 400 and response.json()["field"] == "timzone", response.content
    assert (CronJob.objects.count(), LifecycleEvent.objects.count()) == before
    if job:
        assert CronJob.objects.get(job_id=job["job_id"]).timezone == "UTC"


@pytest.mark.parametrize(
    "schedule",
    [{"every": "2h"}, {"cron_expr": "0 9 * * 1", "timezone": "Asia/Tokyo"}, {"run_at": "20m"}],
)
def test_a_job_read_with_get_can_be_put_back_with_one_change(operator, frozen_now, schedule):
    job_id = create(operator, **{"every": None, **schedule}, metadata={"a": 1})["job_id"]
    shown = operator.get(f"/api/v1/cron/jobs/{job_id}").json()["job"]
    events_before = LifecycleEvent.objects.count()
    response = operator.put(f"/api/v1/cron/jobs/{job_id}", {**shown, "title": "renamed"}, format="json")
    assert response.status_code == 200, response.content
    again = response.json()["job"]
    changed = {k for k in shown if shown[k] != again[k]}
    assert changed <= {"title", "updated_at"}, changed
    assert LifecycleEvent.objects.count() == events_before + 1


def test_a_one_shot_that_already_ran_can_still_be_put_back(operator, frozen_now):
    job_id = create(operator, every=None, run_at="20m")["job_id"]
    shown = operator.get(f"/api/v1/cron/jobs/{job_id}").json()["job"]
    with clock.frozen(frozen_now + timedelta(days=1)):
        response = operator.put(f"/api/v1/cron/jobs/{job_id}", {**shown, "title": "later"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["job"]["run_at"] == shown["run_at"]


def test_webhook_secret_is_write_only_and_kept_when_echoed_back(operator):
    target = {"type": "webhook", "url": "https://agent.example/hook", "secret": "s3cret"}
    job = create(operator, target=target)
    assert job["target"]["secret"] == "***"
    response = operator.patch(f"/api/v1/cron/jobs/{job['job_id']}", {"target": job["target"]}, format="json")
    assert response.status_code == 200
    assert CronJob.objects.get(job_id=job["job_id"]).target["secret"] == "s3cret"


def test_delete_answers_deleted_and_cancels_queued_runs(operator):
    job = create(operator)
    run = operator.post(f"/api/v1/cron/jobs/{job['job_id']}/run").json()["run"]
    response = operator.delete(f"/api/v1/cron/jobs/{job['job_id']}")
    assert response.json() == {"status": "deleted", "job_id": job["job_id"]}
    assert CronRun.objects.get(run_id=run["run_id"]).status == "cancelled"
    assert operator.get(f"/api/v1/cron/jobs/{job['job_id']}").status_code == 404
    # History survives the job.
    assert operator.get(f"/api/v1/cron/runs/{run['run_id']}").json()["run"]["status"] == "cancelled"


def test_run_now_answers_202_with_queued_run_and_409_on_overlap(operator):
    job = create(operator)
    response = operator.post(f"/api/v1/cron/jobs/{job['job_id']}/run")
    assert response.status_code == 202
    run = response.json()["run"]
    assert run["status"] == "queued" and run["reason"] == "manual" and run["scheduled_at"] is None
    assert run["occurrence_id"].startswith(f"cron|{job['job_id']}|")
    assert operator.post(f"/api/v1/cron/jobs/{job['job_id']}/run").status_code == 409
    listed = operator.get(f"/api/v1/cron/jobs/{job['job_id']}").json()["job"]
    assert listed["running"] is True and listed["last_run"]["run_id"] == run["run_id"]


def test_run_now_with_overlap_allow_queues_another(operator):
    job = create(operator, overlap="allow")
    assert operator.post(f"/api/v1/cron/jobs/{job['job_id']}/run").status_code == 202
    assert operator.post(f"/api/v1/cron/jobs/{job['job_id']}/run").status_code == 202


def test_run_listings_are_newest_first_and_limit_is_clamped(operator):
    job = create(operator, overlap="allow")
    ids = [operator.post(f"/api/v1/cron/jobs/{job['job_id']}/run").json()["run"]["run_id"] for _ in range(3)]
    runs = operator.get(f"/api/v1/cron/jobs/{job['job_id']}/runs?limit=2").json()["runs"]
    assert [r["run_id"] for r in runs] == ids[::-1][:2]
    assert len(operator.get("/api/v1/cron/runs?limit=0").json()["runs"]) == 1
    bad = operator.get("/api/v1/cron/runs?limit=lots")
    assert bad.status_code == 400 and bad.json()["field"] == "limit"


def test_callback_completion_finishes_a_running_run_once(operator):
    job = create(operator)
    run_id = operator.post(f"/api/v1/cron/jobs/{job['job_id']}/run").json()["run"]["run_id"]
    run = CronRun.objects.get(run_id=run_id)
    run.status, run.started_at = "running", clock.now()
    run.save()
    url = f"/api/v1/cron/runs/{run_id}/complete"
    assert operator.post(url, {"status": "maybe"}, format="json").json()["field"] == "status"
    done = operator.post(url, {"status": "success", "output": "ok"}, format="json")
    assert done.status_code == 200 and done.json()["run"]["output_preview"] == "ok"
    assert operator.post(url, {"status": "success"}, format="json").status_code == 409


def test_unknown_job_and_unknown_endpoint_answer_json_404(operator):
    assert operator.get("/api/v1/cron/jobs/job_nope").json()["error"] == "not_found"
    response = operator.get("/api/v1/no/such/thing")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_wrong_method_answers_json_405(operator):
    response = operator.delete("/api/v1/cron/jobs")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
