"""WebSocket routes. The scheduling stream consumer arrives with the push issue; the route table is here
so config.asgi does not change when it does."""

from __future__ import annotations

websocket_urlpatterns: list = []
