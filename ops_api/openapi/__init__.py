"""The OpenAPI description of `/api/v1/` (contract §8: `GET /api/schema/`, browsable at `/api/docs/`).

drf-spectacular walks the URLconf; `endpoints.OPERATIONS` tells it what each operation takes and answers,
`schemas.COMPONENTS` holds the shared body shapes, and `postprocess` adds what is not a DRF view.
`docs/openapi.yaml` is the checked-in copy; a test fails when it is stale
(`uv run python manage.py spectacular --file docs/openapi.yaml` refreshes it).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from ops_api.openapi import endpoints
from ops_api.openapi.schemas import COMPONENTS, STRING, obj, ref

SSE = "text/event-stream"


class OperatorTokenScheme(OpenApiAuthenticationExtension):
    """The operator or owner token, as `Authorization: Bearer <token>` (contract §1)."""

    target_class = "ops_api.auth.TokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "operator or owner token"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


PLAIN_PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/health": {
        "get": {
            "operationId": "health",
            "summary": "Liveness and dependencies; no auth. 503 within 2 s when the database is down",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {"description": "healthy", "content": {"application/json": {"schema": ref("Health")}}},
                "503": {
                    "description": "degraded",
                    "content": {"application/json": {"schema": ref("Health")}},
                },
            },
        }
    },
    "/api/v1/ops/scheduling/stream": {
        "get": {
            "operationId": "scheduling_stream",
            "summary": "Server-sent events: the lifecycle log live, as versioned deltas (docs/events.md)",
            "tags": ["ops"],
            "parameters": [
                {
                    "name": "since_seq",
                    "in": "query",
                    "schema": {"type": "integer"},
                    "description": "resume after this seq (Last-Event-ID is honoured too)",
                },
                {
                    "name": "once",
                    "in": "query",
                    "schema": {"type": "integer", "enum": [0, 1]},
                    "description": "1: answer with the first frame and close",
                },
                {
                    "name": "heartbeat_seconds",
                    "in": "query",
                    "schema": {"type": "integer"},
                    "description": "keepalive after this many seconds of silence (clamped to 2..60)",
                },
                {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                {
                    "name": "ops_token",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "the token, for browsers that cannot set headers",
                },
            ],
            "responses": {
                "200": {
                    "description": "`id: <seq>` / `data: <json frame>` lines",
                    "content": {SSE: {"schema": {"type": "string"}}},
                },
                "401": _error("missing or wrong token"),
                "503": _error("push is disabled (UA_SCHED_PUSH_ENABLED=0) or the database is down"),
            },
        }
    },
}


def _link(operation_id: str, parameter: str, pointer: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": {parameter: f"$response.body#{pointer}"}}


# OpenAPI links: where a created job's or run's id is used next (clients and stateful fuzzing follow them).
JOB_ID = "/job/job_id"
LINKS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("/api/v1/cron/jobs", "post", "201"): {
        "GetJob": _link("get_job_detail", "job_id", JOB_ID),
        "PatchJob": _link("patch_job_detail", "job_id", JOB_ID),
        "RunJobNow": _link("post_job_run_now", "job_id", JOB_ID),
        "JobRuns": _link("get_job_runs", "job_id", JOB_ID),
        "DeleteJob": _link("delete_job_detail", "job_id", JOB_ID),
    },
    ("/api/v1/cron/jobs/{job_id}/run", "post", "202"): {
        "GetRun": _link("get_run_detail", "run_id", "/run/run_id"),
        "CompleteRun": _link("post_run_complete", "run_id", "/run/run_id"),
    },
}


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: shared components, and the endpoints that are not DRF views."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(COMPONENTS)
    for path, item in PLAIN_PATHS.items():
        result.setdefault("paths", {}).setdefault(path, item)
    for (path, method, status), links in LINKS.items():
        response = result["paths"].get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is not None:
            response["links"] = links
    result["paths"] = dict(sorted(result["paths"].items()))
    return result


def register() -> None:
    endpoints.register()


__all__ = ["register", "postprocess", "SSE", "obj", "STRING", "_error"]
