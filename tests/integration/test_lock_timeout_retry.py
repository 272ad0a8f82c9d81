"""A real lock timeout on PostgreSQL while an outcome is recorded: another connection holds the event
log's lock, the append times out (LockNotAvailable), and the retry records the run as what it was."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from scheduling import clock, errors
from scheduling.dispatch import Outcome
from scheduling.models import CronRun, LifecycleEvent
from scheduling.services import claims, outcomes
from scheduling.services import jobs as job_services
from tests.conftest import job_payload, requires_postgres
from tests.threads import run_together

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_real_lock_timeout_while_recording_is_retried_not_recorded_as_an_error(monkeypatch, settings):
    settings.UA_EVENT_LOCK_TIMEOUT_MS = 100
    with clock.frozen(T0):
        job_services.create_job(job_payload(every="1h"), None)
    # Claims stamp their times under the row locks (the database clock unless the clock is held).
    with clock.frozen(T0 + timedelta(hours=1)):
        [dispatch], _ = claims.claim_due_occurrences(T0 + timedelta(hours=1), "w", 10)
    locked, released = threading.Event(), threading.Event()
    backoffs: list[float] = []

    def hold_the_event_log() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {LifecycleEvent._meta.db_table} IN EXCLUSIVE MODE")
            locked.set()
            assert released.wait(30)

    def let_go_then_wait(seconds: float) -> None:
        # The first backoff means the first attempt timed out on the lock: now let the holder commit.
        backoffs.append(seconds)
        released.set()

    monkeypatch.setattr(errors, "_backoff", let_go_then_wait)

    def record() -> tuple[int, list]:
        assert locked.wait(30)
        return outcomes.record_outcomes_resilient([(dispatch.run_id, Outcome("success", "ok"))], T0)

    _, (finished, unrecorded) = run_together(hold_the_event_log, record)

    run = CronRun.objects.get(run_id=dispatch.run_id)
    assert backoffs and (finished, unrecorded) == (1, [])
    assert (run.status, run.output) == ("success", "ok")
