"""Projector processes against one real PostgreSQL database: two of them, woken by NOTIFY, apply every
event exactly once between them and leave a projection that agrees with the scan path."""

from __future__ import annotations

import pytest

from calendar_projection.compare import compare
from calendar_projection.models import CalendarEntry, current_state
from calendar_projection.window import resolve_window
from scheduling import clock
from scheduling.models import LifecycleEvent, WorkerPresence
from scheduling.services import jobs as job_services
from tests.conftest import job_payload, requires_postgres
from tests.processes import child_env, manage, stop, wait_for

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_two_projector_processes_keep_one_projection_that_agrees_with_the_scan(tmp_path):
    projectors = [
        manage("run_projector", "--worker-id", f"p{index}", env=child_env(), log=tmp_path / f"p{index}.log")
        for index in range(2)
    ]
    try:
        wait_for(lambda: WorkerPresence.objects.filter(kind="projector").count() == 2, 60)
        wait_for(lambda: current_state().updated_at is not None, 30)
        first = current_state().version
        for index in range(40):
            cron = {"every": None, "cron_expr": f"{index} * * * *", "timezone": "Europe/Berlin"}
            job_services.create_job(job_payload(**(cron if index % 2 else {"every": "2h"})), None)
        head = LifecycleEvent.objects.order_by("-seq").first().seq
        wait_for(lambda: current_state().last_event_seq == head, 60)  # woken by NOTIFY, not a test call
        state = current_state()
        # Version: one per applied event, so each event was applied by exactly one of the two.
        assert state.version == first + 40
        assert CalendarEntry.objects.count() > 40 * 100
        now = clock.now()
        window = resolve_window(view="week", start=None, end=None, tz_name="UTC", fallback_tz="UTC", now=now)
        assert compare(window, "all", None, now, 400).empty
    finally:
        for process in projectors:
            stop(process)
