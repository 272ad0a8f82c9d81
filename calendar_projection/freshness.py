"""Read your writes on the projection path: a calendar read waits briefly for a live projector to apply
what the log already holds, so a client that created a job and then reads its calendar sees the job.

The wait is bounded (UA_CALENDAR_CATCH_UP_MS) and happens only while a projector is alive and behind: with
no projector running (it crashed, or was never started) the read answers at once from what is there, and
the response's `version` says how far that is.
"""

from __future__ import annotations

import time

from django.conf import settings

from calendar_projection.models import ProjectionState, current_state
from scheduling import event_log, presence

POLL_SECONDS = 0.02


def caught_up_state(state: ProjectionState) -> ProjectionState:
    """`state`, or a newer one once the projection has reached the log head seen now (or the wait ran out)."""
    budget = float(settings.UA_CALENDAR_CATCH_UP_MS) / 1000
    if budget <= 0:
        return state
    head = event_log.bounds().last_seq
    if state.last_event_seq >= head or presence.status_of("projector")["status"] != "running":
        return state
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        state = current_state()
        if state.last_event_seq >= head:
            break
    return state
