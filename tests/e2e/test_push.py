"""Push over real sockets against `manage.py runtime` (SQLite, in-memory layer, no projector): WebSocket
and SSE clients receive deltas of API changes, reconnects lose nothing, out-of-range positions and slow
clients get `reset`, unknown WebSocket paths are refused cleanly, and a disabled push answers 503."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.push_clients import TOKEN, SseReader, WebSocketReader, api, embedded_runtime, tuple_address
from tests.processes import ROOT, child_env


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    with embedded_runtime(tmp_path_factory.mktemp("push"), UA_SCHED_PUSH_POLL_SECONDS="30") as started:
        yield started


def head_seq(address: str) -> int:
    with api(address) as client:
        return client.get("/api/v1/ops/scheduling/events", params={"limit": 1}).json()["event_bus_seq"]


def create_job(address: str, token: str = TOKEN, **fields: object) -> dict:
    with api(address, token) as client:
        response = client.post("/api/v1/cron/jobs", json={"command": "push me", "every": "1h", **fields})
        assert response.status_code == 201, response.text
        return response.json()["job"]


def test_a_websocket_client_and_an_sse_client_each_receive_the_delta_for_a_job_created_through_the_api(
    runtime,
):
    address, _ = runtime
    since = head_seq(address)
    websocket = WebSocketReader(address, f"ops_token={TOKEN}&since_seq={since}").start()
    sse = SseReader(address, f"since_seq={since}", {"X-UA-OPS-TOKEN": TOKEN}).start()
    try:
        assert sse.status == 200
        job = create_job(address)
        for reader in (websocket, sse):
            frame = reader.next_event()
            assert frame["kind"] == "event"
            assert frame["event"]["seq"] == since + 1
            assert frame["event"]["event_type"] == "cron_job_created"
            assert frame["event"]["source_ref"] == job["job_id"]
            assert {"projection_version", "projection_last_event_seq"} <= frame.keys()
        assert sse.ids == [since + 1]
    finally:
        websocket.close()
        sse.close()


def test_a_client_that_reconnects_with_since_seq_gets_exactly_the_events_it_missed(runtime):
    address, _ = runtime
    since = head_seq(address)
    first = WebSocketReader(address, f"ops_token={TOKEN}&since_seq={since}").start()
    create_job(address)
    seen = first.events_until(since + 1)
    first.close()
    missed = [create_job(address)["job_id"] for _ in range(3)]
    websocket = WebSocketReader(address, f"ops_token={TOKEN}&since_seq={seen[-1]['event']['seq']}").start()
    # An EventSource reconnects to its first URL and names the last id it saw; that id wins.
    sse = SseReader(
        address, f"since_seq={since}", {"Authorization": f"Bearer {TOKEN}", "Last-Event-ID": str(since + 1)}
    ).start()
    try:
        live = create_job(address)["job_id"]
        for reader in (websocket, sse):
            events = reader.events_until(since + 5)
            assert [e["event"]["seq"] for e in events] == [since + 2, since + 3, since + 4, since + 5]
            assert [e["event"]["source_ref"] for e in events] == [*missed, live]
    finally:
        websocket.close()
        sse.close()


def test_once_returns_after_the_first_frame(runtime):
    address, _ = runtime
    since = head_seq(address)
    create_job(address)
    create_job(address)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = httpx.get(
        f"http://{address}/api/v1/ops/scheduling/stream",
        params={"since_seq": since, "once": 1},
        headers=headers,
        timeout=30,
    ).text
    assert body.count("data: ") == 1 and f"id: {since + 1}\n" in body
    keepalive = httpx.get(
        f"http://{address}/api/v1/ops/scheduling/stream",
        params={"once": 1, "heartbeat_seconds": 1},  # clamped to 2
        headers=headers,
        timeout=30,
    ).text
    assert '"kind": "heartbeat"' in keepalive and f'"seq": {since + 2}' in keepalive


def test_an_owner_token_streams_only_its_owners_events(runtime, tmp_path):
    address, log = runtime
    token = owner_token(log.parent / "push.sqlite3", "alice")
    since = head_seq(address)
    alice = WebSocketReader(address, f"ops_token={token}&since_seq={since}").start()
    try:
        create_job(address, user_id="bob")
        mine = create_job(address, token)
        frame = alice.next_event()
        assert frame["event"]["source_ref"] == mine["job_id"] and frame["event"]["owner_id"] == "alice"
    finally:
        alice.close()


def owner_token(sqlite_path, owner: str) -> str:
    env = child_env(UA_SQLITE_PATH=str(sqlite_path))
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL", None)
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "create_api_token", "--owner", owner],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1].strip()


def test_a_stream_without_a_valid_token_or_session_is_refused(runtime):
    address, _ = runtime
    assert httpx.get(f"http://{address}/api/v1/ops/scheduling/stream", timeout=10).status_code == 401
    wrong = httpx.get(f"http://{address}/api/v1/ops/scheduling/stream?ops_token=nope&once=1", timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    reader = WebSocketReader(address, "ops_token=nope").start()
    reader.thread.join(20)
    assert reader.closed_with == 4401


def test_a_client_behind_retention_or_ahead_of_the_log_gets_a_reset(tmp_path):
    with embedded_runtime(tmp_path, UA_SCHED_EVENT_BUS_MAX="50") as (address, _):
        for _ in range(201):  # the log is trimmed every 200 appends
            create_job(address)
        with api(address) as client:
            replay = client.get("/api/v1/ops/scheduling/events", params={"since_seq": 200}).json()
        oldest, head = replay["oldest_seq"], replay["event_bus_seq"]
        assert oldest > 2
        for since in (1, head + 5):
            websocket = WebSocketReader(address, f"ops_token={TOKEN}&since_seq={since}").start()
            sse = SseReader(address, f"ops_token={TOKEN}&since_seq={since}").start()
            for reader in (websocket, sse):
                frame = reader.next()
                assert frame["kind"] == "reset" and frame["event_bus_seq"] == head, frame
                assert frame["oldest_seq"] == oldest
                reader.thread.join(20)
            assert websocket.closed_with == 4000 and sse.closed_with == "end"
            assert sse.ids == [since]


def test_a_slow_client_is_reset_while_another_client_keeps_receiving(tmp_path):
    env = {"UA_SCHED_PUSH_CLIENT_QUEUE": "20", "UA_SCHED_PUSH_SEND_BUFFER_BYTES": "65536"}
    with embedded_runtime(tmp_path, **env) as (address, log):
        since = head_seq(address)
        fast = WebSocketReader(address, f"ops_token={TOKEN}&since_seq={since}").start()
        slow = stalled_sse_client(address, f"ops_token={TOKEN}&since_seq={since}")
        # About 5.4 MB of frames: more than the kernel buffers between server and stalled client (about
        # 3 MB on loopback), the server's allowance (64 KiB) and the client's queue (20 frames) together.
        total = 90
        for _ in range(total):
            create_job(address, command="x" * 60_000)
        events = fast.events_until(since + total, timeout=60)
        assert [e["event"]["seq"] for e in events] == list(range(since + 1, since + total + 1))
        frames = read_sse_to_the_end(slow)
        assert frames[-1]["kind"] == "reset" and frames[-1]["reason"] == "slow_client"
        delivered = [f["event"]["seq"] for f in frames[:-1]]
        assert delivered == list(range(since + 1, since + 1 + len(delivered))) and len(delivered) < total
        assert "Traceback" not in log.read_text()
        fast.close()


def stalled_sse_client(address: str, query: str) -> socket.socket:
    """An SSE request from a client that reads nothing until told to: a small receive buffer, no reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(tuple_address(address))
    request = (
        f"GET /api/v1/ops/scheduling/stream?{query} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(request.encode())
    return sock


def read_sse_to_the_end(sock: socket.socket) -> list[dict]:
    sock.settimeout(60)
    raw = b""
    while chunk := sock.recv(1 << 20):
        raw += chunk
    sock.close()
    # Each frame is one chunk of the chunked body, so its `data:` line is whole.
    return [json.loads(line) for line in re.findall(rb"^data: (.*)$", raw, re.MULTILINE)]


def test_a_websocket_to_an_unknown_path_is_refused_without_a_server_error(runtime):
    address, log = runtime
    for path in ("/ws/nope/", "/ws/ops/scheduling/extra/", "/", "/api/v1/health"):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://{address}{path}", open_timeout=20)
        assert refused.value.response.status_code == 403
    assert healthy_after(address)
    text = log.read_text()
    assert "Traceback" not in text and "No route found" not in text


def healthy_after(address: str) -> bool:
    return httpx.get(f"http://{address}/api/v1/health", timeout=10).status_code == 200


def test_push_disabled_answers_503_and_replay_keeps_working(tmp_path):
    with embedded_runtime(tmp_path, UA_SCHED_PUSH_ENABLED="0") as (address, _):
        response = httpx.get(f"http://{address}/api/v1/ops/scheduling/stream?ops_token={TOKEN}", timeout=10)
        assert response.status_code == 503
        assert response.json()["error"] == "push_disabled"
        assert response.json()["detail"].startswith("push is disabled")
        reader = WebSocketReader(address, f"ops_token={TOKEN}").start()
        reader.thread.join(20)
        assert reader.closed_with == 4503
        with api(address) as client:
            assert client.get("/api/v1/ops/scheduling/events").status_code == 200
