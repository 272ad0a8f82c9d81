"""What the push hub and each stream read from the database: event-log pages turned into ready-to-send
frames, the log's head, and whether a projector is alive. Every read runs in a worker thread with its
own (pooled) connection, never on the event loop, and not on the single thread that `thread_sensitive`
calls share, so one slow read cannot queue every push client behind it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from channels.db import database_sync_to_async

from calendar_projection import publish
from calendar_projection.models import current_state
from scheduling import event_log, presence
from scheduling.event_pages import read_page


@dataclass
class LogFrame:
    seq: int
    owner_id: str
    text: str  # the frame's JSON, encoded once and shared by every client that receives it


@dataclass
class LogBatch:
    frames: list[LogFrame]
    has_more: bool
    oldest_seq: int
    head_seq: int  # the log's last seq, read in the same snapshot as the page on PostgreSQL

    def next_cursor(self, cursor: int) -> int:
        """Where a reader that has consumed this batch stands. With no more to read, every seq up to the
        head has been seen or filtered out for this reader, so the cursor may jump there."""
        if self.has_more:
            return self.frames[-1].seq
        return max(cursor, self.head_seq, self.frames[-1].seq if self.frames else 0)


def _read_frames(after_seq: int, limit: int, owner_id: str | None) -> LogBatch:
    page = read_page(after_seq, limit, owner_id)
    state = current_state()
    frames = []
    for envelope in json.loads(page.events_json):
        # No calendar_entries: only the projector knows which entries an event changed (docs/events.md).
        frame = {
            "kind": "event",
            "event": envelope,
            "projection_version": state.version,
            "projection_last_event_seq": state.last_event_seq,
        }
        frames.append(LogFrame(envelope["seq"], envelope["owner_id"], json.dumps(frame)))
    return LogBatch(frames, page.has_more, page.oldest_seq, page.log_last_seq)


class DatabaseLog:
    """The hub's window on the event log; tests hand the hub a fake with the same three methods."""

    async def frames_after(self, after_seq: int, limit: int, owner_id: str | None = None) -> LogBatch:
        return await database_sync_to_async(_read_frames, thread_sensitive=False)(after_seq, limit, owner_id)

    async def head(self) -> int:
        return await database_sync_to_async(_head, thread_sensitive=False)()

    async def projector_live(self) -> bool:
        return await database_sync_to_async(_projector_live, thread_sensitive=False)()


def _head() -> int:
    return event_log.bounds().last_seq


def _projector_live() -> bool:
    """A projector that can deliver frames to this process is alive (publish.frames_reach_this_process)."""
    if not publish.frames_reach_this_process():
        return False
    return presence.status_of("projector")["status"] == "running"
