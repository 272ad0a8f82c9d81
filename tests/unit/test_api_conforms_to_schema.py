"""Regression examples from fuzzing (schemathesis, seeded): each request's answer must conform to the
OpenAPI description. A new defect the fuzzer finds gets its example added here."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import httpx
import pytest
import schemathesis
import yaml
from django.core.management import call_command

from tests.conftest import job_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def api_schema(django_db_blocker):
    out = StringIO()
    with django_db_blocker.unblock():
        call_command("spectacular", stdout=out)
    return schemathesis.openapi.from_dict(yaml.safe_load(out.getvalue()))


def conforms(api_schema, template: str, method: str, response) -> None:
    """Validate a Django test response against the operation `method template`."""
    request = httpx.Request(method, f"http://testserver{response.request['PATH_INFO']}")
    answer = httpx.Response(
        response.status_code, headers=dict(response.headers), content=response.content, request=request
    )
    answer.read()  # a built response counts as read only once its body is consumed
    answer.elapsed = timedelta(0)
    api_schema[template][method].validate_response(answer)


def test_last_heartbeat_of_a_session_that_never_ran_conforms(api_schema, operator):
    # Found by the fuzzer (seed 1): last_run and last_summary are null before the first heartbeat.
    operator.put("/api/v1/heartbeat/sessions/never-ran", {"every": "30m"}, format="json")
    response = operator.get("/api/v1/heartbeat/last", {"session_id": "never-ran"})
    assert response.status_code == 200
    conforms(api_schema, "/api/v1/heartbeat/last", "GET", response)


def test_job_lifecycle_answers_conform(api_schema, operator):
    created = operator.post("/api/v1/cron/jobs", job_payload(), format="json")
    conforms(api_schema, "/api/v1/cron/jobs", "POST", created)
    job_id = created.json()["job"]["job_id"]
    conforms(api_schema, "/api/v1/cron/jobs/{job_id}", "GET", operator.get(f"/api/v1/cron/jobs/{job_id}"))
    queued = operator.post(f"/api/v1/cron/jobs/{job_id}/run")
    conforms(api_schema, "/api/v1/cron/jobs/{job_id}/run", "POST", queued)
    conforms(api_schema, "/api/v1/cron/runs", "GET", operator.get("/api/v1/cron/runs"))
    conforms(api_schema, "/api/v1/cron/jobs", "GET", operator.get("/api/v1/cron/jobs"))
    bad = operator.post("/api/v1/cron/jobs", {"command": "x", "cron_expr": "nope"}, format="json")
    assert bad.status_code == 400
    conforms(api_schema, "/api/v1/cron/jobs", "POST", bad)
    deleted = operator.delete(f"/api/v1/cron/jobs/{job_id}")
    conforms(api_schema, "/api/v1/cron/jobs/{job_id}", "DELETE", deleted)


def test_session_and_event_answers_conform(api_schema, operator):
    put = operator.put("/api/v1/heartbeat/sessions/s-1", {"every": "30m"}, format="json")
    conforms(api_schema, "/api/v1/heartbeat/sessions/{session_id}", "PUT", put)
    conforms(api_schema, "/api/v1/heartbeat/sessions", "GET", operator.get("/api/v1/heartbeat/sessions"))
    events = operator.get("/api/v1/ops/scheduling/events", {"since_seq": 0})
    conforms(api_schema, "/api/v1/ops/scheduling/events", "GET", events)
    gone = operator.get("/api/v1/ops/scheduling/events", {"since_seq": 10**9})
    assert gone.status_code == 410
    conforms(api_schema, "/api/v1/ops/scheduling/events", "GET", gone)
