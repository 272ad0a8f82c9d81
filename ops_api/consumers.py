"""WebSocket push: `/ws/ops/scheduling/?since_seq=` carries the same JSON frames as the SSE stream
(contract §5), and every other WebSocket path is refused cleanly.

Close codes (after the handshake, so a browser can read them): 4401 no valid token or session,
4400 a bad query parameter, 4503 push disabled, 4000 after a `reset` frame (reload, then reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from ops_api.auth import principal_for_scope
from ops_api.push.backpressure import backlog_reader
from ops_api.push.stream import StreamRequest, stream

logger = logging.getLogger(__name__)

CLOSE_RESET, CLOSE_BAD_REQUEST, CLOSE_UNAUTHORIZED, CLOSE_DISABLED = 4000, 4400, 4401, 4503


class SchedulingStreamConsumer(AsyncWebsocketConsumer):
    # The per-process push hub is the one member of the channel-layer group; a layer channel (and a
    # Redis receive loop) per client would cost memory per idle client and nothing else.
    channel_layer_alias = "__push_hub_only__"

    async def connect(self) -> None:
        await self.accept()
        if not settings.UA_SCHED_PUSH_ENABLED:
            await self.close(CLOSE_DISABLED)
            return
        principal = await database_sync_to_async(principal_for_scope, thread_sensitive=False)(self.scope)
        if principal is None:
            await self.close(CLOSE_UNAUTHORIZED)
            return
        try:
            request = stream_request(self.scope, principal.owner_id)
        except ValueError:
            await self.close(CLOSE_BAD_REQUEST)
            return
        self.sender = asyncio.create_task(self._forward(request))

    async def _forward(self, request: StreamRequest) -> None:
        try:
            async with contextlib.aclosing(stream(request)) as frames:
                async for frame in frames:
                    await self.send(text_data=frame.text)
                    if frame.kind == "reset":
                        await self.close(CLOSE_RESET)
                        return
        except Exception:  # the connection goes, the server stays; the client reconnects with since_seq
            logger.exception("push stream failed", extra={"action": "push_stream_failed"})
            await self.close(1011)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients have nothing to say; whatever they send is ignored."""

    async def disconnect(self, code: int) -> None:
        sender = getattr(self, "sender", None)
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


def stream_request(scope: dict[str, Any], owner_id: str | None) -> StreamRequest:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))

    def number(name: str) -> int | None:
        values = query.get(name)
        return int(values[0]) if values and values[0] != "" else None

    heartbeat = number("heartbeat_seconds")
    limit = number("limit")
    return StreamRequest(
        owner_id=owner_id,
        since_seq=number("since_seq"),
        limit=max(1, min(5000, limit if limit is not None else 500)),
        heartbeat_seconds=max(2, min(60, heartbeat if heartbeat is not None else 20)),
        backlog=backlog_reader(scope),
    )


class RefusedPath(AsyncWebsocketConsumer):
    """Every WebSocket path without a consumer: refused at the handshake (Daphne answers 403), where the
    router alone would raise, answer 500 and log a traceback."""

    channel_layer_alias = "__push_hub_only__"

    async def connect(self) -> None:
        await self.close()
