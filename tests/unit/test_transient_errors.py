"""A transient database error while an outcome is recorded never becomes a wrong outcome: it is retried
with backoff, and if it persists the outcome is kept for later, never recorded as `error` (one body for
SQLite and PostgreSQL; the errors are the real driver exception classes, raised as Django raises them)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import DataError, OperationalError

from scheduling import clock, errors
from scheduling.dispatch import Outcome
from scheduling.models import CronRun, HeartbeatRun
from scheduling.services import claims, heartbeat_runs, outcomes
from scheduling.services import heartbeats as heartbeat_services
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DONE = T0 + timedelta(hours=1, seconds=5)

TRANSIENT = {
    "deadlock": psycopg.errors.DeadlockDetected("deadlock detected"),
    "lock_timeout": psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
    "serialization": psycopg.errors.SerializationFailure("could not serialize access"),
    "dropped_connection": psycopg.OperationalError("server closed the connection unexpectedly"),
    "sqlite_busy": sqlite3.OperationalError("database is locked"),
}


def as_django_raises_it(driver_error: Exception) -> OperationalError:
    """Django's wrapper: its own class, with the driver's exception as the cause."""
    wrapped = OperationalError(*driver_error.args)
    wrapped.__cause__ = driver_error
    return wrapped


@pytest.fixture(autouse=True)
def _no_real_backoff(monkeypatch):
    monkeypatch.setattr(errors, "_backoff", lambda seconds: None)


def failing(times: int, error: Exception, step):
    calls = {"n": 0}

    def step_that_fails_first(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= times:
            raise as_django_raises_it(error) if not isinstance(error, DataError) else error
        return step(*args, **kwargs)

    return step_that_fails_first


def started_run() -> CronRun:
    with clock.frozen(T0):
        job_services.create_job(job_payload(every="1h"), None)
    # Claims stamp their times under the row locks (the database clock unless the clock is held).
    with clock.frozen(T0 + timedelta(hours=1)):
        [dispatch], _ = claims.claim_due_occurrences(T0 + timedelta(hours=1), "w", 10)
    return CronRun.objects.get(run_id=dispatch.run_id)


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_a_transient_error_while_recording_is_retried_and_the_real_outcome_recorded(monkeypatch, kind):
    run = started_run()
    # Fails for the batch and once more: the old fallback then recorded the success as `error`.
    monkeypatch.setattr(outcomes, "finish_effects", failing(2, TRANSIENT[kind], outcomes.finish_effects))
    finished, unrecorded = outcomes.record_outcomes_resilient([(run.run_id, Outcome("success", "ok"))], DONE)
    run.refresh_from_db()
    assert (finished, unrecorded, run.status, run.output) == (1, [], "success", "ok")


def test_a_transient_error_that_persists_keeps_the_outcome_for_later_and_records_nothing(monkeypatch):
    run = started_run()
    monkeypatch.setattr(
        outcomes, "finish_effects", failing(99, TRANSIENT["deadlock"], outcomes.finish_effects)
    )
    result = (run.run_id, Outcome("success", "ok"))
    assert outcomes.record_outcomes_resilient([result], DONE) == (0, [result])
    assert CronRun.objects.get(run_id=run.run_id).status == "running"

    monkeypatch.undo()  # the database is back: the kept outcome is recorded as what it was
    assert outcomes.record_outcomes_resilient([result], DONE) == (1, [])
    assert CronRun.objects.get(run_id=run.run_id).status == "success"


def test_a_permanent_error_still_finishes_the_run_as_an_error_saying_so(monkeypatch):
    run = started_run()
    monkeypatch.setattr(
        outcomes, "finish_effects", failing(99, DataError("value too long"), outcomes.finish_effects)
    )
    assert outcomes.record_outcomes_resilient([(run.run_id, Outcome("success", "ok"))], DONE) == (1, [])
    run.refresh_from_db()
    assert run.status == "error" and "could not be recorded" in run.error


def test_a_heartbeat_outcome_survives_a_transient_error_too(monkeypatch):
    with clock.frozen(T0):
        session = heartbeat_services.upsert_session("s-1", {"every": "30m"}, None)
    [run] = heartbeat_runs.claim_due_heartbeats(session.next_due_at, "w", 30)
    real = heartbeat_runs._settle_system_events
    monkeypatch.setattr(heartbeat_runs, "_settle_system_events", failing(2, TRANSIENT["serialization"], real))
    assert outcomes.record_heartbeat_results([(run.run_id, Outcome("success", "HEARTBEAT_OK"))], DONE) == []
    assert HeartbeatRun.objects.get(run_id=run.run_id).status == "success"


def test_only_transient_errors_are_classified_transient():
    assert all(errors.is_transient_db_error(as_django_raises_it(e)) for e in TRANSIENT.values())
    assert not errors.is_transient_db_error(DataError("value too long"))
    assert not errors.is_transient_db_error(OperationalError("no such table: scheduling_cronjob"))
    assert not errors.is_transient_db_error(ValueError("not a database error"))
