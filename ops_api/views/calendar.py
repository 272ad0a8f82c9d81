"""The calendar feed (contract §6): `GET /api/v1/ops/calendar/events` on the projection path (the read
model the projector maintains) or the scan path (computed from the domain tables), chosen per request by
UA_SCHED_EVENT_PROJECTION_ENABLED. Both give the same (event_id, status) sets."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.views import APIView

from calendar_projection.feed_cache import cached_feed
from calendar_projection.freshness import caught_up_state
from calendar_projection.models import current_state
from calendar_projection.scan import scan_feed
from calendar_projection.shapes import LEGEND, local_iso
from calendar_projection.window import Window, resolve_window
from ops_api.auth import owner_scope
from scheduling import clock, metrics
from scheduling.errors import InvalidInput

SOURCES = ("all", "cron", "heartbeat")


class CalendarEvents(APIView):
    def get(self, request: Request) -> HttpResponse:
        metrics.count("calendar_events_requests")
        params = request.query_params
        source = params.get("source") or "all"
        if source not in SOURCES:
            raise InvalidInput("source must be all, cron or heartbeat", "source")
        now = clock.now()
        window = resolve_window(
            view=params.get("view"), start=params.get("start"), end=params.get("end"),
            tz_name=params.get("timezone_name"), fallback_tz=settings.UA_DEFAULT_TIMEZONE, now=now,
        )  # fmt: skip
        owner = owner_scope(request)
        if owner is None and params.get("owner"):
            owner = params["owner"]  # an operator may look at one owner's calendar
        return _respond(window, source, owner, now)


def _respond(window: Window, source: str, owner: str | None, now: Any) -> HttpResponse:
    started = time.perf_counter()
    state = current_state()
    limit = settings.UA_CALENDAR_MAX_OCCURRENCES_PER_JOB
    # Until the projector has built the read model there is nothing to read: answer from the scan path
    # (and say so in `path`) rather than with an empty calendar.
    if settings.UA_SCHED_EVENT_PROJECTION_ENABLED and state.updated_at is not None:
        state = caught_up_state(state)
        rows = cached_feed(window, source, owner, now, limit, state)
        events_json, dense, stasis_queue = rows.events_json, rows.always_running, rows.stasis_queue
        path = "projection"
    else:
        events, dense, stasis_queue = scan_feed(window, source, owner, now, limit)
        events_json, path = json.dumps(events), "scan"
    rest = {
        "timezone": window.tz_name,
        "view": window.view,
        "start_utc": clock.iso(window.start),
        "end_utc": clock.iso(window.end),
        "start_local": local_iso(window.start, window.tz),
        "end_local": local_iso(window.end, window.tz),
        "always_running": dense,
        "stasis_queue": stasis_queue,
        "legend": LEGEND,
        "version": state.version,
        "last_event_at_utc": clock.iso(state.last_event_at),
        "path": path,
    }
    # The events array may arrive already encoded (PostgreSQL renders it): splice it in. Each event has
    # exactly one "event_id" key, so counting it counts the events without decoding the array.
    body = '{"events":' + events_json + "," + json.dumps(rest, default=str)[1:]
    built_ms = (time.perf_counter() - started) * 1000
    metrics.record_projection_build(built_ms, events_json.count('"event_id"'), len(dense), len(stasis_queue))
    return HttpResponse(body, content_type="application/json")
