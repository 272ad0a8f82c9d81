"""Push clients for tests over real sockets: a WebSocket reader and an SSE reader, each collecting frames
on a thread so a test can wait for them with a deadline; and the embedded runtime as a context."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.processes import child_env, free_port, manage, stop, wait_for

TOKEN = "push-test-operator-token"


@contextlib.contextmanager
def embedded_runtime(tmp_path: Path, **env: str) -> Iterator[tuple[str, Path]]:
    """`manage.py runtime --no-workers` on SQLite and the in-memory layer; yields (host:port, log)."""
    port = free_port()
    environment = child_env(UA_SQLITE_PATH=str(tmp_path / "push.sqlite3"), UA_OPS_TOKEN=TOKEN, **env)
    environment.pop("DATABASE_URL")
    environment.pop("REDIS_URL", None)
    log = tmp_path / "runtime.log"
    process = manage("runtime", "--port", str(port), "--no-workers", env=environment, log=log)
    address = f"127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(address), 90, 0.2)
        yield address, log
    finally:
        stop(process)


def healthy(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def api(address: str, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://{address}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


class Reader:
    """Frames (decoded JSON) arrive on `frames`; `closed_with` holds the close code or the end of stream."""

    def __init__(self) -> None:
        self.frames: queue.Queue[dict] = queue.Queue()
        self.closed_with: int | str | None = None
        self.ids: list[int] = []

    def next(self, timeout: float = 20.0) -> dict:
        return self.frames.get(timeout=timeout)

    def next_event(self, timeout: float = 20.0) -> dict:
        while True:
            frame = self.next(timeout)
            if frame["kind"] != "heartbeat":
                return frame

    def events_until(self, seq: int, timeout: float = 30.0) -> list[dict]:
        events: list[dict] = []
        while not events or events[-1]["event"]["seq"] < seq:
            frame = self.next_event(timeout)
            assert frame["kind"] == "event", frame
            events.append(frame)
        return events


class WebSocketReader(Reader):
    def __init__(
        self, address: str, query: str = "", *, receive_buffer: int | None = None, max_queue: int | None = 16
    ) -> None:
        super().__init__()
        sock = socket.socket()
        if receive_buffer is not None:
            # A small kernel buffer, so a client that stops reading shows at the server quickly.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect(tuple_address(address))
        # Entered by hand: the reader thread owns the connection and ends with it.
        self.connection: ClientConnection = connect(
            f"ws://{address}/ws/ops/scheduling/?{query}",
            sock=sock,
            max_queue=max_queue,
            open_timeout=30,
            ping_interval=None,
        ).__enter__()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> WebSocketReader:
        self.thread.start()
        return self

    def _read(self) -> None:
        try:
            for message in self.connection:
                self.frames.put(json.loads(message))
        except ConnectionClosed:
            pass
        self.closed_with = self.connection.close_code

    def close(self) -> None:
        self.connection.close()


class SseReader(Reader):
    def __init__(self, address: str, query: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.url = f"http://{address}/api/v1/ops/scheduling/stream?{query}"
        self.headers = headers or {}
        self.status: int | None = None
        self.started = threading.Event()
        self.client = httpx.Client(timeout=httpx.Timeout(60, read=90))
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> SseReader:
        self.thread.start()
        assert self.started.wait(30), "the stream did not answer"
        return self

    def _read(self) -> None:
        try:
            with self.client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                self.started.set()
                frame_id = None
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        frame_id = int(line[4:])
                    elif line.startswith("data: "):
                        self.ids.append(frame_id)
                        self.frames.put(json.loads(line[6:]))
        except httpx.HTTPError:
            pass
        finally:
            self.started.set()
            self.closed_with = "end"

    def close(self) -> None:
        self.client.close()


def tuple_address(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)
