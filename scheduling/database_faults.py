"""Telling "the database cannot be reached" apart from every other database error.

A connection-class failure (the server is down or restarting, the session was terminated, the network or
the pool gave up) says nothing about the request or the run: the API answers 503 and asks the client to
retry, and the scheduler keeps what it holds and tries again. Any other error (a constraint, a lock
timeout, a bug) is not an outage and is not reported as one.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

# SQLSTATE class 08 is "connection exception"; 57P01..57P03 are the server shutting down or starting up
# (AdminShutdown after pg_terminate_backend or a fast stop, CrashShutdown, CannotConnectNow).
_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})


def is_connection_error(error: BaseException) -> bool:
    """True for errors that mean the database is unreachable right now, on PostgreSQL (psycopg)."""
    if isinstance(error, InterfaceError):
        return True  # Django raises it for a connection that is already closed
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    if cause is None or not type(cause).__module__.startswith(("psycopg", "psycopg_pool")):
        return False  # SQLite's "database is locked" and friends are not outages
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith("08") or sqlstate in _SHUTDOWN_STATES
    # No SQLSTATE: the client side failed without a server answer (refused, closed, pool timeout).
    return True
