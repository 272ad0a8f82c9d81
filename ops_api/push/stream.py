"""One push client's stream of frames, shared by the SSE view and the WebSocket consumer.

Order of work ("subscribe first, then read the snapshot"): the client subscribes to the hub, then reads
what it missed since `since_seq` from the log, then forwards live frames, dropping any at or below what
the log already gave it (see the ordering argument in `hub.py`). A `since_seq` outside the retained log
(below `oldest_seq - 1` or above the head), a hub that lost events, or a client too slow to keep its
bounded queue gets one `reset` frame, and the stream ends: the client must reload its snapshot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

from django.conf import settings

from ops_api.push import clients
from ops_api.push.hub import Hub, Subscription, hub_for_this_loop
from scheduling import clock, metrics

# How often a stream whose client is not reading looks at the server's send buffer again.
BACKLOG_POLL_SECONDS = 0.05


@dataclass
class Frame:
    seq: int  # the SSE `id:`: the client's position after this frame
    kind: str
    text: str


@dataclass
class StreamRequest:
    owner_id: str | None
    since_seq: int | None  # None: from now on
    limit: int = 500
    heartbeat_seconds: float = 20.0
    backlog: Callable[[], int | None] = lambda: None  # bytes the server holds unsent (backpressure.py)


async def stream(request: StreamRequest, hub: Hub | None = None) -> AsyncGenerator[Frame, None]:
    hub = hub or hub_for_this_loop()
    subscription = await hub.subscribe(request.owner_id, int(settings.UA_SCHED_PUSH_CLIENT_QUEUE))
    clients.connected()
    try:
        cursor = subscription.seen_seq if request.since_seq is None else request.since_seq
        reset = None
        while True:  # the snapshot: everything after since_seq that the log holds now
            batch = await hub.log.frames_after(cursor, request.limit, request.owner_id)
            if cursor < batch.oldest_seq - 1 or cursor > batch.head_seq:
                reset = _reset(batch.head_seq, batch.oldest_seq, "outside_retention", cursor)
                break
            for log_frame in batch.frames:
                if not await _room(request, subscription):
                    break
                cursor = log_frame.seq
                yield _event(log_frame.seq, log_frame.text)
            if subscription.reset_reason:
                reset = _reset(hub.seq, None, subscription.reset_reason, cursor)
                break
            cursor = batch.next_cursor(cursor)
            if not batch.has_more:
                break
        if reset:
            yield reset
            return
        async for frame in _live(subscription, cursor, request, hub):
            yield frame
    finally:
        hub.unsubscribe(subscription)
        clients.disconnected()


async def _room(request: StreamRequest, subscription: Subscription) -> bool:
    """Wait while the server holds more than the allowed bytes unsent to this client; False if the
    client was reset meanwhile (its queue overflowed). The hub keeps queueing for it while we wait."""
    limit = int(settings.UA_SCHED_PUSH_SEND_BUFFER_BYTES)
    while (request.backlog() or 0) > limit:
        if subscription.reset_reason:
            return False
        await asyncio.sleep(BACKLOG_POLL_SECONDS)
    return not subscription.reset_reason


async def _live(
    subscription: Subscription, cursor: int, request: StreamRequest, hub: Hub
) -> AsyncIterator[Frame]:
    while True:
        if subscription.reset_reason:
            yield _reset(hub.seq, None, subscription.reset_reason, cursor)
            return
        while subscription.queue:
            seq, text = subscription.queue.popleft()
            if seq > cursor:
                if not await _room(request, subscription):
                    break
                cursor = seq
                yield _event(seq, text)
            if subscription.reset_reason:
                break
        if subscription.queue or subscription.reset_reason:
            continue
        # Drained: every seq the hub has considered is now sent or not this client's to see.
        cursor = max(cursor, subscription.seen_seq)
        subscription.wake.clear()
        try:
            # asyncio.timeout, not wait_for: no extra task per wake, and a fan-out wakes every client.
            async with asyncio.timeout(request.heartbeat_seconds):
                await subscription.wake.wait()
        except TimeoutError:
            metrics.count("push_stream_keepalives")
            body = {"kind": "heartbeat", "seq": cursor, "at_utc": clock.iso(clock.now())}
            yield Frame(cursor, "heartbeat", json.dumps(body))


def _event(seq: int, text: str) -> Frame:
    metrics.count("push_stream_event_payloads")
    return Frame(seq, "event", text)


def _reset(head_seq: int, oldest_seq: int | None, reason: str, cursor: int) -> Frame:
    """The client must reload its snapshot (the feed or replay), then reconnect from that snapshot's
    `event_bus_seq`. The id is the client's own position, so a client that only reconnects (as an
    EventSource does) is told again rather than silently skipping what it missed."""
    body = {"kind": "reset", "reason": reason, "since_seq": cursor, "event_bus_seq": head_seq}
    if oldest_seq is not None:
        body["oldest_seq"] = oldest_seq
    return Frame(cursor, "reset", json.dumps(body))
