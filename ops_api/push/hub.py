"""The push hub: one per event loop (Daphne serves every connection on one loop), fanning event frames out
to the push clients of this server process.

Sources, all of which only say "there is something new":
- projector frames: `calendar_projection.publish` hands them over in-process (in-memory layer) or through
  this process's one member channel of the Redis group. They carry calendar entries.
- the event log itself: the in-process doorbell, PostgreSQL NOTIFY (commits by any process) and a polling
  floor wake the hub, which reads the log. So push works with no projector running; while a projector is
  alive the hub gives it `UA_SCHED_PUSH_PROJECTOR_GRACE_MS` to deliver an event before reading it from the
  log, so clients usually get the richer frame.

Ordering argument: the hub forwards seqs strictly in order and without holes (`self.seq` + 1 each time).
A projector frame that arrives after a hole first makes the hub read the hole from the log; a frame at or
below `self.seq` was already forwarded and is dropped. A subscription is activated at a moment when
`self.seq` is exact, and its stream reads its snapshot from the log only after that, so snapshot and live
frames overlap and never leave a hole; the stream drops live frames at or below its snapshot.

Slow clients: each subscription holds at most `capacity` frames. On overflow its queue is dropped and it
is marked for reset; the hub never waits for a client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import connection

from calendar_projection import publish
from ops_api.push.log_source import DatabaseLog, LogBatch
from scheduling import doorbell

logger = logging.getLogger(__name__)

PAGE = 500
# How long a "projector is alive" answer is trusted before asking the database again.
PROJECTOR_CHECK_SECONDS = 5.0
# Group membership in channels_redis expires (config/settings.py sets group_expiry to 300 s, so that the
# channels of dead server processes stop receiving copies of every frame within minutes); renew it well
# before, whether or not frames arrive.
GROUP_RENEW_SECONDS = 60.0


class EventLog(Protocol):
    async def frames_after(self, after_seq: int, limit: int, owner_id: str | None = None) -> LogBatch: ...
    async def head(self) -> int: ...
    async def projector_live(self) -> bool: ...


@dataclass(eq=False)
class Subscription:
    owner_id: str | None  # None: the operator, who sees every event
    capacity: int
    queue: deque[tuple[int, str]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    active: asyncio.Event = field(default_factory=asyncio.Event)
    seen_seq: int = 0  # the last seq the hub considered for this subscription (sent to it or filtered)
    reset_reason: str | None = None

    def offer(self, seq: int, owner_id: str, text: str) -> None:
        self.seen_seq = seq
        if self.reset_reason or (self.owner_id is not None and owner_id != self.owner_id):
            return
        if len(self.queue) >= self.capacity:
            self.reset("slow_client")
            return
        self.queue.append((seq, text))
        self.wake.set()

    def reset(self, reason: str) -> None:
        self.queue.clear()
        self.reset_reason = reason
        self.wake.set()


class Hub:
    def __init__(self, log: EventLog | None = None, *, listen: bool = True) -> None:
        self.loop = asyncio.get_running_loop()
        self.log: EventLog = log or DatabaseLog()
        self.listen = listen  # False in unit tests: no doorbell, NOTIFY or Redis sources
        self.subscriptions: set[Subscription] = set()
        self.seq = 0
        self.synced = False
        self.inbox: deque[list[dict[str, Any]]] = deque()
        self.wake = asyncio.Event()
        self.bell_rung = False
        self.log_due: float | None = None
        self.last_tail = 0.0
        self.projector: tuple[float, bool] = (-PROJECTOR_CHECK_SECONDS, False)
        self.task: asyncio.Task | None = None
        self.stoppers: list[Any] = []

    # --- subscriptions -----------------------------------------------------------------------------

    async def subscribe(self, owner_id: str | None, capacity: int) -> Subscription:
        if self.task is None:
            self.task = self.loop.create_task(self._run(), name="push-hub")
            if self.listen:
                self._start_sources()
        subscription = Subscription(owner_id, capacity)
        self.subscriptions.add(subscription)
        self.wake.set()
        await subscription.active.wait()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    # --- inputs (any thread) --------------------------------------------------------------------------

    def receive_frames(self, frames: list[publish.EventFrame] | list[dict[str, Any]]) -> None:
        # From the in-process projector (typed frames) or decoded from the Redis group (plain dicts).
        self._from_any_thread(self._frames_arrived, frames)

    def ring(self) -> None:
        self._from_any_thread(self._bell)

    def _from_any_thread(self, callback: Any, *args: Any) -> None:
        try:
            if _running_loop() is self.loop:
                callback(*args)
            else:
                self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop has closed (process shutting down, or a finished test)
            pass

    def _frames_arrived(self, frames: list[dict[str, Any]]) -> None:
        if self.subscriptions:
            self.inbox.append(frames)
            self.wake.set()

    def _bell(self) -> None:
        self.bell_rung = True
        self.wake.set()

    # --- the loop ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._sleep()
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or Redis hiccup: keep the hub alive, retry on the next wake
                logger.exception("push hub step failed", extra={"action": "push_hub_error"})
                self.synced = False
                await asyncio.sleep(1.0)

    async def _sleep(self) -> None:
        timeout = None
        if self.subscriptions:
            now = time.monotonic()
            due = self.last_tail + float(settings.UA_SCHED_PUSH_POLL_SECONDS)
            if self.log_due is not None:
                due = min(due, self.log_due)
            timeout = max(0.0, due - now)
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            pass
        self.wake.clear()

    async def _step(self) -> None:
        if not self.subscriptions:
            # Idle: nothing to forward, and the position goes stale; re-read it for the next subscriber.
            self.inbox.clear()
            self.synced = False
            return
        if not self.synced:
            self.seq = await self.log.head()
            self.synced = True
            self.last_tail = time.monotonic()
        for subscription in self.subscriptions:
            if not subscription.active.is_set():
                subscription.seen_seq = self.seq
                subscription.active.set()
        while self.inbox:
            await self._forward_projector_frames(self.inbox.popleft())
        if time.monotonic() - self.last_tail >= float(settings.UA_SCHED_PUSH_POLL_SECONDS):
            # The polling floor, for a lost NOTIFY or a writer in another process on SQLite: it rings like
            # the doorbell, so a live projector still gets its grace.
            self.bell_rung = True
            self.last_tail = time.monotonic()
        if self.bell_rung:
            self.bell_rung = False
            due = time.monotonic() + await self._projector_grace()
            self.log_due = due if self.log_due is None else min(self.log_due, due)
        if self.log_due is not None and time.monotonic() >= self.log_due:
            await self._tail_log()

    async def _projector_grace(self) -> float:
        checked_at, live = self.projector
        if time.monotonic() - checked_at > PROJECTOR_CHECK_SECONDS:
            live = await self.log.projector_live()
            self.projector = (time.monotonic(), live)
        return float(settings.UA_SCHED_PUSH_PROJECTOR_GRACE_MS) / 1000 if live else 0.0

    async def _forward_projector_frames(self, frames: list[dict[str, Any]]) -> None:
        for frame in sorted(frames, key=lambda f: f["event"]["seq"]):
            seq = frame["event"]["seq"]
            if seq > self.seq + 1:
                await self._tail_log()  # the hole (and maybe more) comes from the log, in order
            if seq == self.seq + 1:
                self._fan_out(seq, frame["event"].get("owner_id", ""), _encode(frame))

    async def _tail_log(self) -> None:
        self.log_due = None
        self.last_tail = time.monotonic()
        while True:
            batch = await self.log.frames_after(self.seq, PAGE)
            if self.seq < batch.oldest_seq - 1:
                # Trimmed before this process could read it: nobody here can be told what they missed.
                logger.warning("push hub fell behind retention", extra={"action": "push_hub_reset"})
                for subscription in self.subscriptions:
                    subscription.reset("behind_retention")
                self.seq = batch.head_seq
                return
            for frame in batch.frames:
                if frame.seq == self.seq + 1:
                    self._fan_out(frame.seq, frame.owner_id, frame.text)
            if not batch.has_more:
                return

    def _fan_out(self, seq: int, owner_id: str, text: str) -> None:
        self.seq = seq
        for subscription in self.subscriptions:
            if subscription.active.is_set():
                subscription.offer(seq, owner_id, text)

    # --- sources ---------------------------------------------------------------------------------------

    def _start_sources(self) -> None:
        self.stoppers.append(doorbell.subscribe(self.ring))
        if publish.uses_in_memory_layer():
            self.stoppers.append(publish.subscribe_local(self.receive_frames))
        else:
            self.stoppers.append(self.loop.create_task(self._receive_from_group(), name="push-hub-redis"))
        if connection.vendor == "postgresql":
            from scheduling import wakeups

            stop = threading.Event()
            wakeups.start_listener(self.ring, stop)
            self.stoppers.append(stop.set)

    async def _receive_from_group(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        backoff = 0.5
        while True:
            renewer: asyncio.Task | None = None
            try:
                channel = await layer.new_channel()
                await layer.group_add(publish.GROUP, channel)
                renewer = asyncio.create_task(self._renew_membership(layer, channel))
                backoff = 0.5
                while True:
                    message = await layer.receive(channel)
                    if message.get("type") == publish.MESSAGE_TYPE:
                        self._frames_arrived(message["frames"])
                    if renewer.done():
                        renewer.result()  # its Redis error: reconnect below
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis down: the log path keeps clients fed meanwhile
                logger.warning("push hub lost Redis: %r", error, extra={"action": "push_hub_redis_lost"})
                self._bell()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                if renewer is not None:
                    renewer.cancel()

    async def _renew_membership(self, layer: Any, channel: str) -> None:
        while True:
            await asyncio.sleep(GROUP_RENEW_SECONDS)
            await layer.group_add(publish.GROUP, channel)

    async def close(self) -> None:
        for stopper in self.stoppers:
            stopper.cancel() if isinstance(stopper, asyncio.Task) else stopper()
        if self.task:
            self.task.cancel()


def _encode(frame: dict[str, Any]) -> str:
    import json

    return json.dumps(frame)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub_for_this_loop() -> Hub:
    """The hub of the running event loop, made on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
