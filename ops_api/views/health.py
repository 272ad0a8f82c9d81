"""GET /api/v1/health: no auth, 503 when the database is down (contract §8)."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from scheduling import clock, presence

logger = logging.getLogger(__name__)


def runtime_version() -> str:
    try:
        return version("scheduling-runtime")
    except PackageNotFoundError:
        return "0.1.0"


def health(request: HttpRequest) -> JsonResponse:
    body: dict[str, Any] = {
        "status": "ok",
        "timestamp": clock.iso(clock.now()),
        "version": runtime_version(),
        "channel_layer": {"backend": "redis" if settings.REDIS_URL else "in_memory"},
    }
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        body["db_status"] = "ok"
        body["scheduler"] = presence.status_of("scheduler")
        body["projector"] = presence.status_of("projector")
    except Exception as error:  # any database failure is reported, never raised as a 500
        logger.warning("health check: database unavailable", extra={"action": "health_db_down"})
        body.update(status="degraded", db_status=f"error: {type(error).__name__}")
        body.update(scheduler={"status": "unknown"}, projector={"status": "unknown"})
        return JsonResponse(body, status=503)
    return JsonResponse(body)
