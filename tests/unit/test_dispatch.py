"""Delivery to targets over real sockets (a local HTTP server), and what the runtime does with answers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scheduling import dispatch


class Target(BaseHTTPRequestHandler):
    """Answers by path: /ok, /error, /accepted (202), /http500, /text, /slow."""

    received: list[tuple[dict, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Target.received.append((dict(self.headers), body))
        answers = {
            "/ok": (200, {"status": "success", "output": "done"}),
            "/error": (200, {"status": "error", "error": "agent refused"}),
            "/accepted": (202, {}),
            "/http500": (500, {"detail": "boom"}),
            "/weird": (200, {"status": "maybe"}),
        }
        if self.path == "/slow":
            time.sleep(2)
        if self.path == "/text":
            self._send(200, b"plain words", "text/plain")
            return
        code, answer = answers.get(self.path, (200, {"status": "success"}))
        self._send(code, json.dumps(answer).encode(), "application/json")

    def _send(self, code: int, raw: bytes, content_type: str) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            # The runtime hung up first (its dispatch timed out, as /slow is meant to make it do): there
            # is no one left to answer, which is the expected end of that exchange, not a server error.
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class TargetServer(ThreadingHTTPServer):
    daemon_threads = True
    requests_done = threading.Semaphore(0)

    def shutdown_request(self, request: object) -> None:
        # Called after the handler and any handle_error traceback: a test can wait for a request's end.
        super().shutdown_request(request)
        TargetServer.requests_done.release()


@pytest.fixture(scope="module")
def target_url():
    server = TargetServer(("127.0.0.1", 0), Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def deliver(target: dict, timeout: float = 5, body: dict | None = None) -> dispatch.Outcome:
    async def go() -> dispatch.Outcome:
        try:
            return await dispatch.deliver(target, body or {"run_id": "run_1", "command": "go"}, timeout)
        finally:
            await dispatch.close()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("path", "status", "output", "error"),
    [
        ("/ok", "success", "done", ""),
        ("/error", "error", "", "agent refused"),
        ("/accepted", "deferred", "", ""),
        ("/text", "success", "plain words", ""),
    ],
)
def test_webhook_answers_complete_or_defer_the_run(target_url, path, status, output, error):
    outcome = deliver({"type": "webhook", "url": target_url + path})
    assert (outcome.status, outcome.output, outcome.error) == (status, output, error)


def test_webhook_http_errors_and_unknown_statuses_fail_the_run(target_url):
    assert deliver({"type": "webhook", "url": target_url + "/http500"}).error.startswith(
        "target answered HTTP 500"
    )
    assert "unknown status" in deliver({"type": "webhook", "url": target_url + "/weird"}).error


def test_webhook_that_does_not_answer_in_time_fails_with_the_contract_message(target_url):
    outcome = deliver({"type": "webhook", "url": target_url + "/slow"}, timeout=0.5)
    assert (outcome.status, outcome.error) == ("error", "execution timed out after 0.5s")


def test_a_caller_that_hangs_up_leaves_no_traceback_in_the_test_output(target_url, capfd):
    while TargetServer.requests_done.acquire(blocking=False):
        pass  # forget the requests of earlier tests
    host, port = target_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")
        # Linger 0: closing resets the connection, as a client that timed out and went away does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert TargetServer.requests_done.acquire(timeout=10)
    assert "Traceback" not in capfd.readouterr().err


def test_unreachable_webhook_fails_with_a_reason():
    outcome = deliver({"type": "webhook", "url": "http://127.0.0.1:9/nothing"})
    assert outcome.status == "error" and "Connect" in outcome.error


def test_webhook_body_is_signed_with_the_secret_and_carries_headers(target_url):
    Target.received.clear()
    body = {"run_id": "run_9", "occurrence_id": "cron|job_1|1", "command": "go"}
    target = {"type": "webhook", "url": target_url + "/ok", "secret": "s3cret", "headers": {"X-Team": "a"}}
    deliver(target, body=body)
    headers, raw = Target.received[-1]
    expected = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert headers["X-UA-Signature"] == expected and headers["X-Team"] == "a"
    assert json.loads(raw) == body
    deliver({"type": "webhook", "url": target_url + "/ok"})
    assert "X-UA-Signature" not in Target.received[-1][0]


def test_builtin_handlers():
    assert deliver({"type": "handler", "name": "echo"}).output == "CRON_OK"
    assert deliver({"type": "handler", "name": "fail"}).status == "error"
    assert deliver({"type": "handler", "name": "sleep:0.01"}).status == "success"
    assert (
        deliver({"type": "handler", "name": "sleep:5"}, timeout=0.2).error == "execution timed out after 0.2s"
    )
