"""The baseline for bench/api.py: the smallest ASGI app Daphne can serve (no Django), so the table shows
what the server and the loopback cost by themselves."""

from __future__ import annotations

from typing import Any

BODY = b'{"status":"ok"}'


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
