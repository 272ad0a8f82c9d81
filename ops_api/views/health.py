"""GET /api/v1/health: no auth, 503 when the database is down (contract §8)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from scheduling import clock, presence
from scheduling.models import WorkerPresence

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


# Health answers within 2 s while the database is down (contract §8). It never waits on the pool (whose
# timeout is 10 s): it probes over its own connection, and gives up on the probe after this deadline.
# The deadline is needed besides the connect timeout because libpq and psycopg treat any connect timeout
# under 2 s as 2 s; a probe past its deadline finishes (or times out) on its own thread, and the few
# threads bound how many can pile up while the database is unreachable.
HEALTH_DB_DEADLINE_SECONDS = 1.5
HEALTH_CONNECT_TIMEOUT_SECONDS = 2
_probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-probe")


def health(request: HttpRequest) -> JsonResponse:
    body: dict[str, Any] = {
        "status": "ok",
        "timestamp": clock.iso(clock.now()),
        "version": runtime_version(),
        "channel_layer": channel_layer_status(),
    }
    try:
        if connection.vendor == "postgresql":
            params = connection.get_connection_params()
            workers = _probes.submit(_probe_postgres, params).result(HEALTH_DB_DEADLINE_SECONDS)
        else:
            workers = _probe_orm()
    except Exception as error:  # any database failure is reported, never raised as a 500
        logger.warning("health check: database unavailable", extra={"action": "health_db_down"})
        body.update(status="degraded", db_status=f"error: {type(error).__name__}")
        body.update(scheduler={"status": "unknown"}, projector={"status": "unknown"})
        response = JsonResponse(body, status=503)
        response["Retry-After"] = "5"
        return response
    body["db_status"] = "ok"
    body.update(workers)
    return JsonResponse(body)


def _probe_orm() -> dict[str, dict]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {kind: presence.status_of(kind) for kind in ("scheduler", "projector")}


def _probe_postgres(params: dict[str, Any]) -> dict[str, dict]:
    """Check the database over a fresh, short-timeout connection and read worker presence with it: a pooled
    connection would wait the pool's timeout while the database is down, and could be one the server
    already closed."""
    params.update(autocommit=True, connect_timeout=HEALTH_CONNECT_TIMEOUT_SECONDS)
    cutoff = clock.now() - presence.FRESH_FOR
    table = WorkerPresence._meta.db_table
    with psycopg.connect(**params) as probe:
        rows = probe.execute(
            f"SELECT kind, last_seen_at FROM {table} WHERE last_seen_at >= %s",  # noqa: S608 - model table
            [cutoff],
        ).fetchall()
    return {
        kind: presence.summarise([seen for row_kind, seen in rows if row_kind == kind])
        for kind in ("scheduler", "projector")
    }
