"""SSE push: `GET /api/v1/ops/scheduling/stream` (contract §5).

An async view returning a StreamingHttpResponse over an async iterator: under an ASGI server the stream
is driven by the event loop, so an open stream holds no worker thread. Only the auth check and the log
reads run in threads, briefly.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase

from ops_api.auth import principal_for_scope
from ops_api.errors import json_error
from ops_api.push.backpressure import backlog_reader
from ops_api.push.stream import StreamRequest, stream


async def scheduling_stream(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return json_error(405, "method_not_allowed", f'method "{request.method}" not allowed')
    if not settings.UA_SCHED_PUSH_ENABLED:
        detail = "push is disabled (UA_SCHED_PUSH_ENABLED=0); poll GET /api/v1/ops/scheduling/events instead"
        return json_error(503, "push_disabled", detail)
    scope = request.scope  # type: ignore[attr-defined]  # ASGIRequest
    principal = await database_sync_to_async(principal_for_scope, thread_sensitive=False)(scope)
    if principal is None:
        response = json_error(401, "unauthorized", "a valid token or an operator session is required")
        response["WWW-Authenticate"] = 'Bearer realm="scheduling-runtime"'
        return response
    try:
        stream_request = _stream_request(request, principal.owner_id, scope)
    except _BadParam as bad:
        return json_error(400, "invalid", f"{bad.field} must be an integer", field=bad.field)
    once = request.GET.get("once", "") in ("1", "true", "yes")
    streaming = StreamingHttpResponse(_sse(stream_request, once), content_type="text/event-stream")
    streaming["Cache-Control"] = "no-cache"
    streaming["X-Accel-Buffering"] = "no"  # proxies such as nginx must not hold frames back
    return streaming


async def _sse(stream_request: StreamRequest, once: bool) -> AsyncIterator[str]:
    # A comment first: it sends the headers at once, so a client knows it is connected before any frame.
    yield ": connected\n\n"
    async with contextlib.aclosing(stream(stream_request)) as frames:
        async for frame in frames:
            yield f"id: {frame.seq}\ndata: {frame.text}\n\n"
            if once or frame.kind == "reset":
                return


class _BadParam(Exception):
    def __init__(self, field: str) -> None:
        self.field = field


def _integer(raw: str | None, field: str) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadParam(field)


def _stream_request(request: HttpRequest, owner_id: str | None, scope: dict) -> StreamRequest:
    # An EventSource reconnects to the URL it was opened with, since_seq and all, and sends the last id it
    # saw: that id is the newer position, so it wins.
    last_event_id = _integer(request.headers.get("Last-Event-ID"), "Last-Event-ID")
    since_seq = _integer(request.GET.get("since_seq"), "since_seq")
    if last_event_id is not None:
        since_seq = last_event_id
    heartbeat = _integer(request.GET.get("heartbeat_seconds"), "heartbeat_seconds")
    limit = _integer(request.GET.get("limit"), "limit")
    return StreamRequest(
        owner_id=owner_id,
        since_seq=since_seq,
        limit=max(1, min(5000, limit if limit is not None else 500)),
        heartbeat_seconds=max(2, min(60, heartbeat if heartbeat is not None else 20)),
        backlog=backlog_reader(scope),
    )
