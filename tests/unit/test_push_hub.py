"""The push hub and one client's stream, against a fake event log: ordering, gap filling, dedupe, owner
filtering, slow-client resets and in-process delivery from the projector's thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading

import pytest

from calendar_projection import publish
from ops_api.push.hub import Hub, Subscription
from ops_api.push.log_source import LogBatch, LogFrame
from ops_api.push.stream import StreamRequest, stream


class FakeLog:
    """An event log in memory: append events, trim the oldest, count reads."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.oldest = 1
        self.reads = 0

    def append(self, owner_id: str = "") -> dict:
        seq = self.head_seq + 1
        event = {"seq": seq, "event_type": "cron_job_created", "owner_id": owner_id}
        self.events.append(event)
        return event

    def trim_to(self, oldest: int) -> None:
        self.events = [e for e in self.events if e["seq"] >= oldest]
        self.oldest = oldest

    @property
    def head_seq(self) -> int:
        return self.events[-1]["seq"] if self.events else self.oldest - 1

    async def frames_after(self, after_seq: int, limit: int, owner_id: str | None = None) -> LogBatch:
        self.reads += 1
        visible = [e for e in self.events if e["seq"] > after_seq and owner_id in (None, e["owner_id"])]
        frames = [
            LogFrame(e["seq"], e["owner_id"], json.dumps({"kind": "event", "event": e})) for e in visible
        ]
        return LogBatch(frames[:limit], len(frames) > limit, self.oldest, self.head_seq)

    async def head(self) -> int:
        return self.head_seq

    async def projector_live(self) -> bool:
        return False


def projector_frame(event: dict) -> dict:
    return publish.event_frame(event, 7, event["seq"], [{"event_id": f"cron|x|{event['seq']}"}])


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def drain(subscription: Subscription) -> list[int]:
    seqs = [seq for seq, _ in subscription.queue]
    subscription.queue.clear()
    return seqs


@pytest.fixture
async def hub_and_log():
    log = FakeLog()
    hub = Hub(log, listen=False)
    yield hub, log
    await hub.close()


async def test_projector_frames_after_a_hole_are_preceded_by_the_hole_read_from_the_log(hub_and_log):
    hub, log = hub_and_log
    subscription = await hub.subscribe(None, 100)
    events = [log.append() for _ in range(4)]
    hub.receive_frames([projector_frame(events[0])])
    hub.receive_frames([projector_frame(events[3])])
    hub.receive_frames([projector_frame(events[2]), projector_frame(events[3])])  # late repeats
    await settle()
    assert drain(subscription) == [1, 2, 3, 4]
    assert log.reads == 1


async def test_frames_from_the_projector_carry_calendar_entries_and_frames_from_the_log_do_not(hub_and_log):
    hub, log = hub_and_log
    subscription = await hub.subscribe(None, 100)
    first, second = log.append(), log.append()
    hub.receive_frames([projector_frame(first)])
    await settle()
    hub.ring()  # the doorbell: no projector is alive, so the hub reads the log at once
    await settle()
    frames = [json.loads(text) for _, text in subscription.queue]
    assert [f["event"]["seq"] for f in frames] == [1, 2]
    assert frames[0]["calendar_entries"] == [{"event_id": "cron|x|1"}]
    assert "calendar_entries" not in frames[1]
    assert second["seq"] == 2


async def test_an_owner_subscription_receives_only_its_owners_events(hub_and_log):
    hub, log = hub_and_log
    alice = await hub.subscribe("alice", 100)
    operator = await hub.subscribe(None, 100)
    for owner in ("alice", "bob", "alice", ""):
        log.append(owner)
    hub.ring()
    await settle()
    assert drain(alice) == [1, 3]
    assert drain(operator) == [1, 2, 3, 4]
    assert alice.seen_seq == 4


async def test_a_full_queue_resets_its_client_while_the_others_keep_receiving(hub_and_log):
    hub, log = hub_and_log
    slow = await hub.subscribe(None, 3)
    fast = await hub.subscribe(None, 100)
    for _ in range(5):
        log.append()
    hub.ring()
    await settle()
    assert slow.reset_reason == "slow_client" and not slow.queue
    assert drain(fast) == [1, 2, 3, 4, 5]


async def test_events_trimmed_before_the_hub_read_them_reset_every_client(hub_and_log):
    hub, log = hub_and_log
    subscription = await hub.subscribe(None, 100)
    for _ in range(10):
        log.append()
    log.trim_to(6)
    hub.ring()
    await settle()
    assert subscription.reset_reason == "behind_retention"
    assert hub.seq == 10


async def test_a_reconnecting_stream_gets_exactly_what_it_missed_then_live_frames_without_repeats(
    hub_and_log,
):
    hub, log = hub_and_log
    for _ in range(5):
        log.append()
    request = StreamRequest(owner_id=None, since_seq=2, limit=2, heartbeat_seconds=30)
    async with contextlib.aclosing(stream(request, hub)) as frames:
        seen = [(await anext(frames)).seq for _ in range(3)]
        assert seen == [3, 4, 5]
        sixth = log.append()
        # The projector republishes 5 (already sent from the log) and publishes 6.
        hub.receive_frames([projector_frame(log.events[4]), projector_frame(sixth)])
        frame = await asyncio.wait_for(anext(frames), 5)
        assert (frame.seq, frame.kind) == (6, "event")
        assert json.loads(frame.text)["calendar_entries"]


@pytest.mark.parametrize("since_seq", [3, 99, -5])
async def test_a_stream_whose_since_seq_is_outside_the_retained_log_gets_one_reset(hub_and_log, since_seq):
    hub, log = hub_and_log
    for _ in range(10):
        log.append()
    log.trim_to(5)
    request = StreamRequest(owner_id=None, since_seq=since_seq)
    frames = [frame async for frame in stream(request, hub)]
    assert [f.kind for f in frames] == ["reset"]
    body = json.loads(frames[0].text)
    assert (body["reason"], body["oldest_seq"], body["event_bus_seq"]) == ("outside_retention", 5, 10)


async def test_a_stream_with_nothing_to_say_sends_a_keepalive_carrying_its_position(hub_and_log):
    hub, log = hub_and_log
    log.append("bob")
    request = StreamRequest(owner_id="alice", since_seq=0, heartbeat_seconds=0.05)
    async with contextlib.aclosing(stream(request, hub)) as frames:
        frame = await asyncio.wait_for(anext(frames), 5)
    assert frame.kind == "heartbeat" and json.loads(frame.text)["seq"] == 1


async def test_a_stream_that_cannot_write_to_its_client_is_reset_when_its_queue_overflows(
    hub_and_log, settings
):
    hub, log = hub_and_log
    settings.UA_SCHED_PUSH_CLIENT_QUEUE = 3
    settings.UA_SCHED_PUSH_SEND_BUFFER_BYTES = 100
    unsent = {"bytes": 0}
    log.append()
    request = StreamRequest(owner_id=None, since_seq=0, backlog=lambda: unsent["bytes"])
    async with contextlib.aclosing(stream(request, hub)) as frames:
        assert (await asyncio.wait_for(anext(frames), 5)).seq == 1
        unsent["bytes"] = 10_000  # the client stopped reading; the server holds what we sent
        next_frame = asyncio.ensure_future(anext(frames))
        for burst in (2, 3):  # without backpressure the stream would hand over event 2 in between
            for _ in range(burst):
                log.append()
            hub.ring()
            await settle()
        frame = await asyncio.wait_for(next_frame, 5)
    assert frame.kind == "reset" and json.loads(frame.text)["reason"] == "slow_client"
    assert frame.seq == 1  # its position: a plain reconnect is told again, never skips ahead


async def test_publish_from_another_thread_reaches_the_hub_on_its_own_loop(hub_and_log, settings):
    hub, log = hub_and_log
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    unsubscribe = publish.subscribe_local(hub.receive_frames)
    try:
        subscription = await hub.subscribe(None, 100)
        event = log.append()
        thread = threading.Thread(target=publish.publish, args=([projector_frame(event)],))
        thread.start()
        thread.join(5)
        await asyncio.wait_for(subscription.wake.wait(), 5)  # the hub's loop queued the frame
        assert drain(subscription) == [1]
    finally:
        unsubscribe()


def test_a_hub_waits_for_projector_frames_only_when_they_can_reach_its_process(settings):
    """Without Redis a projector in another process publishes into its own memory: the hub must read the
    log at once instead of giving it the grace (with `runtime --server-processes` every server is such a
    process). An in-process projector, or Redis, can deliver."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert not publish.frames_reach_this_process()
    publish.projector_started_here(True)
    try:
        assert publish.frames_reach_this_process()
    finally:
        publish.projector_started_here(False)
    assert not publish.frames_reach_this_process()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
    assert publish.frames_reach_this_process()


@pytest.mark.django_db
def test_a_live_projector_in_another_process_without_redis_is_not_waited_for(settings):
    from ops_api.push.log_source import _projector_live
    from scheduling import clock, presence

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    presence.announce("projector", "projector-elsewhere", clock.now())
    assert _projector_live() is False
    publish.projector_started_here(True)
    try:
        assert _projector_live() is True
    finally:
        publish.projector_started_here(False)
