"""How many bytes the server has accepted from a push stream but not yet written to the client's socket.

ASGI's `send` has no flow control in Daphne: it hands every message to Twisted, which buffers without
limit, so a client that stops reading would grow the server's memory forever and its bounded queue would
never fill. `config.asgi` puts the connection's `send` in the scope under SEND_SCOPE_KEY; from it we reach
Daphne's protocol and its Twisted transport and read the transport's write buffer. A stream waits while
that buffer is above `UA_SCHED_PUSH_SEND_BUFFER_BYTES`, so its hub queue fills and overflows into a
`reset` instead. Under servers whose `send` already waits for the socket (uvicorn), or if the internals
are not what we expect, this reports None and the server's own flow control applies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

SEND_SCOPE_KEY = "scheduling.push.send"


def backlog_reader(scope: dict[str, Any]) -> Callable[[], int | None]:
    transport = _daphne_transport(scope.get(SEND_SCOPE_KEY))

    def backlog() -> int | None:
        if transport is None:
            return None
        try:
            return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        except AttributeError:
            return None

    return backlog


def _daphne_transport(send: Any) -> Any:
    # Daphne's send is functools.partial(server.handle_reply, protocol).
    if isinstance(send, functools.partial) and getattr(send.func, "__name__", "") == "handle_reply":
        return getattr(send.args[0], "transport", None) if send.args else None
    return None


def with_send_in_scope(application: Any) -> Any:
    """Wrap the ASGI app so push streams can find their connection's transport (see above)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, SEND_SCOPE_KEY: send}
        await application(scope, receive, send)

    return app
