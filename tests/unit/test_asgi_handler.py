"""The ASGI handler that serves the runtime (one thread hop per request) answers exactly as Django's
stock handler does: same status, headers and body."""

from __future__ import annotations

import asyncio

import pytest
from django.core.handlers.asgi import ASGIHandler

from ops_api.asgi_handler import SyncChainASGIHandler
from tests.conftest import OPERATOR_TOKEN


async def _call(app: ASGIHandler, method: str, path: str, headers: list, body: bytes = b"") -> list[dict]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http",
        "method": method, "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5), "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict] = []
    finished = asyncio.Event()
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if pending:
            return pending.pop()
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    await app(scope, receive, send)
    return sent


def _answer(app: ASGIHandler, *request: object) -> tuple:
    sent = asyncio.run(_call(app, *request))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], sorted(start["headers"]), body


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("GET", "/static/nonexistent.css", [], b""),
        ("GET", "/api/v1/no/such/endpoint", [], b""),
        ("GET", "/api/v1/cron/jobs", [], b""),  # no token: 401
        ("DELETE", "/api/v1/cron/jobs", [(b"authorization", f"Bearer {OPERATOR_TOKEN}".encode())], b""),
        ("POST", "/api/v1/cron/jobs", [(b"content-type", b"application/json")], b"x" * 70_000),  # 413
        ("GET", "/api/v1/cron/jobs/a%00b", [], b""),
    ],
)
def test_the_runtime_handler_answers_byte_for_byte_like_djangos_own(method, path, headers, body):
    ours = _answer(SyncChainASGIHandler(), method, path, headers, body)
    stock = _answer(ASGIHandler(), method, path, headers, body)
    assert ours == stock
    assert 400 <= ours[0] < 500


def test_the_runtime_handler_runs_middleware_and_view_in_one_synchronous_chain():
    handler = SyncChainASGIHandler()
    assert not asyncio.iscoroutinefunction(handler._middleware_chain)
