"""A busy session's heartbeat history stays bounded while every skip is still announced (issue 6, item 5)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F

from scheduling import clock
from scheduling.models import HeartbeatRun, LifecycleEvent
from scheduling.services import heartbeat_runs
from scheduling.services import heartbeats as services

pytestmark = pytest.mark.django_db


def claim_every_retry(times: int) -> None:
    for _ in range(times):
        clock.advance(timedelta(seconds=15))
        heartbeat_runs.claim_due_heartbeats(clock.now(), "worker-1", 30)


def skipped_events() -> int:
    return LifecycleEvent.objects.filter(event_type="heartbeat_skipped").count()


def test_a_long_busy_streak_keeps_two_rows_but_announces_every_skip(frozen_now):
    services.upsert_session("s-1", {"every": "30m"}, None)
    services.set_busy("s-1", True, None)
    clock.advance(timedelta(minutes=30))
    claim_every_retry(200)
    rows = list(HeartbeatRun.objects.filter(session_id="s-1").order_by("created_at"))
    assert [(row.status, row.reason) for row in rows] == [("skipped", "busy"), ("skipped", "busy")]
    assert sum(row.skip_count for row in rows) == 200
    assert skipped_events() == 200
    # The newest row is the newest skip, so going idle still finds the heartbeat waiting on busy.
    assert rows[-1].finished_at == clock.now()
    session = services.set_busy("s-1", False, None)
    assert session.next_due_at == clock.now()


def test_a_streak_ends_when_the_heartbeat_runs_and_the_next_streak_keeps_its_own_head(frozen_now):
    services.upsert_session("s-1", {"every": "30m"}, None)
    services.set_busy("s-1", True, None)
    clock.advance(timedelta(minutes=30))
    claim_every_retry(5)
    services.set_busy("s-1", False, None)
    [run] = heartbeat_runs.claim_due_heartbeats(clock.now(), "worker-1", 30)
    heartbeat_runs.finish_heartbeat(run.run_id, "success", "HEARTBEAT_OK", "", clock.now())
    services.set_busy("s-1", True, None)
    clock.advance(timedelta(minutes=30))
    claim_every_retry(5)
    # The run starts at the instant of the last skip (the clock is frozen): started runs sort after.
    rows = HeartbeatRun.objects.filter(session_id="s-1").order_by(
        "created_at", F("started_at").asc(nulls_first=True)
    )
    assert [(row.status, row.skip_count) for row in rows] == [
        ("skipped", 1),
        ("skipped", 4),
        ("success", 1),
        ("skipped", 1),
        ("skipped", 4),
    ]
    assert skipped_events() == 10
