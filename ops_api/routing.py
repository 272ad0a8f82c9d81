"""WebSocket routes. The last route refuses every other path at the handshake: Channels' router would
raise for an unknown path, and the server would answer 500 with a traceback (issue 6, item 7)."""

from __future__ import annotations

from django.urls import re_path

from ops_api.consumers import RefusedPath, SchedulingStreamConsumer

websocket_urlpatterns: list = [
    re_path(r"^ws/ops/scheduling/?$", SchedulingStreamConsumer.as_asgi()),
    re_path(r"", RefusedPath.as_asgi()),
]
