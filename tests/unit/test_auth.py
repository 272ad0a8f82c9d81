"""Auth and owner scoping (contract §1)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.conftest import OPERATOR_TOKEN, job_payload

pytestmark = pytest.mark.django_db


def test_health_needs_no_token(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["db_status"] == "ok"
    assert {"timestamp", "version", "scheduler", "projector", "channel_layer"} <= body.keys()


@pytest.mark.parametrize(
    "headers", [{}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_X_UA_OPS_TOKEN": "x"}]
)
def test_missing_or_wrong_token_answers_401(headers):
    response = APIClient().get("/api/v1/cron/jobs", **headers)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


def test_operator_token_accepted_as_bearer_or_header():
    assert (
        APIClient().get("/api/v1/cron/jobs", HTTP_AUTHORIZATION=f"Bearer {OPERATOR_TOKEN}").status_code == 200
    )
    assert APIClient().get("/api/v1/cron/jobs", HTTP_X_UA_OPS_TOKEN=OPERATOR_TOKEN).status_code == 200


def test_query_token_is_not_accepted_on_plain_endpoints():
    assert APIClient().get(f"/api/v1/cron/jobs?ops_token={OPERATOR_TOKEN}").status_code == 401


def test_unset_operator_token_never_means_open(settings):
    settings.UA_OPS_TOKEN = ""
    assert APIClient().get("/api/v1/cron/jobs").status_code == 401
    assert APIClient().get("/api/v1/cron/jobs", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_auth_off_is_explicit(settings):
    settings.UA_OPS_AUTH = "off"
    assert APIClient().get("/api/v1/cron/jobs").status_code == 200


def test_owner_sees_and_changes_only_its_own_jobs(operator, owner_client):
    alice, bob = owner_client("alice"), owner_client("bob")
    mine = alice.post("/api/v1/cron/jobs", job_payload(), format="json").json()["job"]
    assert mine["user_id"] == "alice"
    theirs = bob.post("/api/v1/cron/jobs", job_payload(), format="json").json()["job"]
    assert [j["job_id"] for j in alice.get("/api/v1/cron/jobs").json()["jobs"]] == [mine["job_id"]]
    for method in ("get", "delete"):
        assert getattr(alice, method)(f"/api/v1/cron/jobs/{theirs['job_id']}").status_code == 404
    assert (
        alice.patch(f"/api/v1/cron/jobs/{theirs['job_id']}", {"title": "x"}, format="json").status_code == 404
    )
    assert alice.post(f"/api/v1/cron/jobs/{theirs['job_id']}/run").status_code == 404
    assert alice.get(f"/api/v1/cron/jobs/{theirs['job_id']}/runs").status_code == 404
    assert len(operator.get("/api/v1/cron/jobs").json()["jobs"]) == 2


def test_owner_cannot_create_for_another_owner(alice):
    response = alice.post("/api/v1/cron/jobs", job_payload(user_id="bob"), format="json")
    assert response.status_code == 400 and response.json()["field"] == "user_id"


def test_owner_runs_and_events_are_scoped(operator, owner_client):
    alice, bob = owner_client("alice"), owner_client("bob")
    job = bob.post("/api/v1/cron/jobs", job_payload(), format="json").json()["job"]
    run = bob.post(f"/api/v1/cron/jobs/{job['job_id']}/run").json()["run"]
    assert alice.get(f"/api/v1/cron/runs/{run['run_id']}").status_code == 404
    assert alice.get("/api/v1/cron/runs").json()["runs"] == []
    assert alice.get("/api/v1/ops/scheduling/events").json()["events"] == []
    assert len(bob.get("/api/v1/ops/scheduling/events").json()["events"]) == 1


def test_create_api_token_prints_the_token_last(capsys):
    call_command("create_api_token", "--owner", "carol")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    created = client.post("/api/v1/cron/jobs", job_payload(), format="json").json()["job"]
    assert created["user_id"] == "carol"

