"""The seam between the projector and the push surfaces (SSE, WebSocket): versioned delta frames.

The projector, after it commits a batch of applied events, calls `publish(frames)`; the push hub of each
server process (`ops_api.push`) receives them and forwards them to its clients. Push is a doorbell: the
event table is the truth. The hub fills any gap in the seqs it receives from the log
(`scheduling.event_pages`) before forwarding, and tails the log itself when no projector publishes, so
push works, without calendar entries, even while no projector runs.

Frame shape (contract §5), one per applied event:
    {"kind": "event", "event": <envelope>, "projection_version": int, "projection_last_event_seq": int,
     "calendar_entries": [<calendar event (contract §6)>, ...]}   # the entries this event changed
Frames the hub read from the log instead carry no `calendar_entries` key (see docs/events.md, "Push").

Transport:
- Redis (`REDIS_URL` set): one channel-layer message {"type": MESSAGE_TYPE, "frames": [...]} per chunk,
  group_send to GROUP; every server process has one member channel in GROUP (its hub), not one per client.
- In-memory layer (the embedded runtime): the InMemoryChannelLayer's asyncio queues belong to one event
  loop and the projector runs in its own thread, so frames go straight to the hubs registered here with
  `subscribe_local`, which hand them over to their own loop (`call_soon_threadsafe`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypedDict

from django.conf import settings

logger = logging.getLogger(__name__)

GROUP = "scheduling.stream"
MESSAGE_TYPE = "scheduling.frames"
# Frames per channel-layer message: keeps one message well under Redis' and msgpack's comfortable sizes.
CHUNK_FRAMES = 200
# A publish waits this long for Redis; after a failure publishing pauses, so a Redis outage costs the
# projector one timeout per pause rather than one per batch. Clients lose nothing: hubs read the log.
SEND_TIMEOUT_SECONDS = 2.0
PAUSE_AFTER_FAILURE_SECONDS = 5.0


class EventFrame(TypedDict):
    kind: str
    event: dict[str, Any]
    projection_version: int
    projection_last_event_seq: int
    calendar_entries: list[dict[str, Any]]


def event_frame(
    envelope: dict[str, Any],
    projection_version: int,
    projection_last_event_seq: int,
    calendar_entries: list[dict[str, Any]] | None = None,
) -> EventFrame:
    return {
        "kind": "event",
        "event": envelope,
        "projection_version": projection_version,
        "projection_last_event_seq": projection_last_event_seq,
        "calendar_entries": calendar_entries or [],
    }


def publish(frames: list[EventFrame]) -> None:
    """Send frames to every push hub, in every server process (Redis) or this one (in-memory).
    Called after commit, from any thread that runs no event loop; returns once Redis accepted the frames
    (or after SEND_TIMEOUT_SECONDS). A failure here loses no data: hubs fill gaps from the log."""
    if not frames:
        return
    if uses_in_memory_layer():
        _deliver_locally(list(frames))
        return
    for start in range(0, len(frames), CHUNK_FRAMES):
        _redis_publisher().send({"type": MESSAGE_TYPE, "frames": list(frames[start : start + CHUNK_FRAMES])})


def uses_in_memory_layer() -> bool:
    backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""))
    return backend.endswith("InMemoryChannelLayer")


_projectors_here = 0


def projector_started_here(running: bool) -> None:
    """A projector loop in this process starts (True) or stops (False)."""
    global _projectors_here
    with _local_lock:
        _projectors_here += 1 if running else -1


def frames_reach_this_process() -> bool:
    """Whether a live projector's frames can arrive here: through Redis from any process, or in-process
    when a projector runs in this very process. Without Redis, a projector in another process (`run_projector`
    beside Daphne, or the runtime's own with `--server-processes`) publishes into its own memory only, so a
    hub must not wait for its frames (the projector grace) and reads the log at once instead."""
    if not uses_in_memory_layer():
        return True
    with _local_lock:
        return _projectors_here > 0


# --- in-process delivery (in-memory layer) ---------------------------------------------------------------

_local_receivers: list[Callable[[list[EventFrame]], None]] = []
_local_lock = threading.Lock()


def subscribe_local(receiver: Callable[[list[EventFrame]], None]) -> Callable[[], None]:
    """Register a receiver for frames published in this process (called on the publishing thread; it
    must hand the frames to its own loop and return at once). Returns an unsubscribe function."""
    with _local_lock:
        _local_receivers.append(receiver)

    def unsubscribe() -> None:
        with _local_lock:
            if receiver in _local_receivers:
                _local_receivers.remove(receiver)

    return unsubscribe


def _deliver_locally(frames: list[EventFrame]) -> None:
    with _local_lock:
        receivers = list(_local_receivers)
    for receiver in receivers:
        try:
            receiver(frames)
        except Exception:  # one broken receiver must not stop the projector or the others
            logger.exception("push receiver failed", extra={"action": "push_publish_failed"})


# --- Redis delivery --------------------------------------------------------------------------------------


class _RedisPublisher:
    """One event loop in a daemon thread owns the Redis connection. channels_redis keeps a connection
    pool per event loop; an `async_to_sync` per publish would build (and tear down) a loop and a
    connection each time."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.paused_until = 0.0
        threading.Thread(target=self.loop.run_forever, name="push-publisher", daemon=True).start()

    def send(self, message: dict[str, Any]) -> None:
        if time.monotonic() < self.paused_until:
            return
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        future = asyncio.run_coroutine_threadsafe(layer.group_send(GROUP, message), self.loop)
        try:
            future.result(SEND_TIMEOUT_SECONDS)
        except (FutureTimeout, Exception) as error:  # any Redis failure: the log still has every event
            future.cancel()
            self.paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
            logger.warning("push publish failed: %r", error, extra={"action": "push_publish_failed"})


_publisher: _RedisPublisher | None = None
_publisher_lock = threading.Lock()


def _redis_publisher() -> _RedisPublisher:
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            _publisher = _RedisPublisher()
        return _publisher
