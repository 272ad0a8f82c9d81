"""A request that fails because the database cannot be reached answers 503 with Retry-After and a JSON
error (contract §8); every other database error stays what it is. The real outage is in
tests/integration/test_database_faults.py; here the failure is injected (either database)."""

from __future__ import annotations

import sqlite3

import psycopg
import psycopg_pool
import pytest
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError

from scheduling.database_faults import is_connection_error
from scheduling.services import jobs as job_services

pytestmark = pytest.mark.django_db


def wrapped(django_error: type, cause: BaseException) -> BaseException:
    """A Django database error raised from a driver error, as Django's wrapper raises it."""
    try:
        raise django_error(str(cause)) from cause
    except django_error as error:
        return error


def test_connection_class_errors_are_outages_and_others_are_not():
    assert is_connection_error(wrapped(OperationalError, psycopg.errors.AdminShutdown("terminating")))
    assert is_connection_error(wrapped(OperationalError, psycopg.errors.ConnectionFailure("lost")))
    assert is_connection_error(wrapped(OperationalError, psycopg.OperationalError("connection refused")))
    assert is_connection_error(wrapped(OperationalError, psycopg_pool.PoolTimeout("no connection in 10s")))
    assert is_connection_error(wrapped(InterfaceError, psycopg.InterfaceError("connection already closed")))
    assert not is_connection_error(wrapped(OperationalError, psycopg.errors.LockNotAvailable("lock timeout")))
    assert not is_connection_error(wrapped(OperationalError, psycopg.errors.DeadlockDetected("deadlock")))
    assert not is_connection_error(wrapped(OperationalError, sqlite3.OperationalError("database is locked")))
    assert not is_connection_error(wrapped(IntegrityError, psycopg.errors.UniqueViolation("duplicate")))
    assert not is_connection_error(ValueError("not a database error"))


def test_an_unreachable_database_answers_503_with_retry_after_and_a_json_error(operator, monkeypatch):
    def unreachable(*args, **kwargs):
        raise wrapped(OperationalError, psycopg.errors.AdminShutdown("terminating connection"))

    monkeypatch.setattr(job_services, "list_jobs", unreachable)
    response = operator.get("/api/v1/cron/jobs")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"] == "database_unavailable" and response.json()["detail"]


def test_other_database_errors_are_not_reported_as_an_outage(operator, monkeypatch):
    def broken(*args, **kwargs):
        raise wrapped(DatabaseError, psycopg.errors.UndefinedTable("no such table"))

    monkeypatch.setattr(job_services, "list_jobs", broken)
    operator.raise_request_exception = True
    with pytest.raises(DatabaseError):
        operator.get("/api/v1/cron/jobs")
