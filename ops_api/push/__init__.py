"""Live push of lifecycle events to operators and owners over SSE and WebSocket (contract §5).

`connected_clients()` is this process's number of connected push clients (the metrics read it)."""

from ops_api.push.clients import connected_clients

__all__ = ["connected_clients"]
