"""Replay of the lifecycle event log (contract §5, first bullet)."""

from __future__ import annotations

import json

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calendar_projection.models import current_state
from ops_api.auth import owner_scope
from ops_api.params import int_param
from scheduling import metrics
from scheduling.errors import Gone
from scheduling.event_pages import read_page


class EventReplay(APIView):
    def get(self, request: Request) -> HttpResponse:
        metrics.count("push_replay_requests")
        since_seq = int_param(request, "since_seq", 0, -1, 2**62)
        limit = int_param(request, "limit", 500, 1, 5000)
        page = read_page(max(since_seq, 0), limit, owner_scope(request))
        if since_seq < page.oldest_seq - 1 or since_seq > page.log_last_seq or since_seq < 0:
            error = Gone("since_seq is outside the retained event log; reload the snapshot", "since_seq")
            gone = {**error.as_dict(), "oldest_seq": page.oldest_seq, "event_bus_seq": page.log_last_seq}
            return Response(gone, status=410)
        # With no more to read, every seq up to the log's last (read in the same snapshot) has been seen
        # or filtered out for this owner, so the cursor may jump there.
        if page.has_more:
            if page.last_seq_in_page is None:  # a page with more after it holds at least one event
                raise RuntimeError("event page has more but no last seq")
            next_since_seq = page.last_seq_in_page
        else:
            next_since_seq = max(since_seq, page.log_last_seq, page.last_seq_in_page or 0)
        state = current_state()
        rest = {
            "has_more": page.has_more,
            "next_since_seq": next_since_seq,
            "event_bus_seq": max(page.log_last_seq, next_since_seq),
            "oldest_seq": page.oldest_seq,
            "projection_version": state.version,
            "projection_last_event_seq": state.last_event_seq,
        }
        # The events array arrives already encoded; splice it in rather than decode and re-encode it.
        body = '{"events":' + page.events_json + "," + json.dumps(rest)[1:]
        return HttpResponse(body, content_type="application/json")
