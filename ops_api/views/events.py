"""Replay of the lifecycle event log (contract §5, first bullet)."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import APIView

from calendar_projection.models import current_state
from ops_api.auth import owner_scope
from ops_api.params import int_param
from scheduling import event_log
from scheduling.errors import Gone


class EventReplay(APIView):
    def get(self, request: Any) -> Response:
        since_seq = int_param(request, "since_seq", 0, -1, 2**62)
        limit = int_param(request, "limit", 500, 1, 5000)
        bounds = event_log.bounds()
        if since_seq < bounds.oldest_seq - 1 or since_seq > bounds.last_seq or since_seq < 0:
            error = Gone("since_seq is outside the retained event log; reload the snapshot", "since_seq")
            body = {**error.as_dict(), "oldest_seq": bounds.oldest_seq, "event_bus_seq": bounds.last_seq}
            return Response(body, status=410)
        owner_id = owner_scope(request)
        events = event_log.read_since(since_seq, limit + 1, owner_id)
        has_more = len(events) > limit
        events = events[:limit]
        # With no more to read, every seq up to the bound read first has committed and been seen (or
        # filtered out for this owner), so the cursor may jump there.
        next_since_seq = (
            events[-1].seq if has_more else max([since_seq, bounds.last_seq] + [e.seq for e in events])
        )
        state = current_state()
        return Response(
            {
                "events": [event_log.envelope(event) for event in events],
                "has_more": has_more,
                "next_since_seq": next_since_seq,
                "event_bus_seq": max(bounds.last_seq, next_since_seq),
                "oldest_seq": bounds.oldest_seq,
                "projection_version": state.version,
                "projection_last_event_seq": state.last_event_seq,
            }
        )
