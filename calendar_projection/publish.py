"""The seam between the projector and the push surfaces (SSE, WebSocket): versioned delta frames.

The projector, after it commits a batch of applied events, calls `publish(frames)`; the push consumers in
`ops_api` subscribe to `GROUP` on the channel layer and forward the frames to their clients. Push is a
doorbell: the event table is the truth. A consumer that sees a frame whose `event.seq` is not its last
sent seq + 1 reads the missing events from the log (`scheduling.event_pages`) before forwarding.

Frame shape (contract §5), one per applied event:
    {"kind": "event", "event": <envelope>, "projection_version": int, "projection_last_event_seq": int,
     "calendar_entries": [<calendar event (contract §6)>, ...]}   # the entries this event changed

Channel-layer message: {"type": "scheduling.frames", "frames": [frame, ...]}.
"""

from __future__ import annotations

from typing import Any, TypedDict

GROUP = "scheduling.stream"
MESSAGE_TYPE = "scheduling.frames"


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
    """Send frames to every push consumer, in every server process (Redis) or this one (in-memory).
    Called after commit; a failure here loses no data (consumers re-read the log on a gap)."""
    # Implemented by the push work (issue 7): channel-layer group_send of
    # {"type": MESSAGE_TYPE, "frames": frames} to GROUP, safe to call from a non-async thread.
    # A no-op on the projector's branch until the push branch is merged (the lead resolves this).
    return
