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
}


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: shared components, and the endpoints that are not DRF views."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(COMPONENTS)
    for path, item in PLAIN_PATHS.items():
        result.setdefault("paths", {}).setdefault(path, item)
    result["paths"] = dict(sorted(result["paths"].items()))
    return result


def register() -> None:
    endpoints.register()


__all__ = ["register", "postprocess", "SSE", "obj", "STRING", "_error"]
