"""GET /api/v1/health: no auth, 503 when the database is down (contract §8)."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import redis
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


def channel_layer_status() -> dict[str, str]:
    """The in-memory layer is always up; Redis is pinged, so health reports it rather than assuming it."""
    if not settings.REDIS_URL:
        return {"backend": "in_memory", "status": "ok"}
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5).ping()
    except redis.RedisError as error:
        return {"backend": "redis", "status": f"error: {type(error).__name__}"}
    return {"backend": "redis", "status": "ok"}


def health(request: HttpRequest) -> JsonResponse:
    body: dict[str, Any] = {
        "status": "ok",
        "timestamp": clock.iso(clock.now()),
        "version": runtime_version(),
        "channel_layer": channel_layer_status(),
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
