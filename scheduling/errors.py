"""Domain errors. Each carries the contract's error code, a sentence, the offending field and the HTTP
status the API should answer with, so every surface reports a failure the same way."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


class DomainError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, detail: str, field: str | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code:
            self.code = code

    def as_dict(self) -> dict[str, str]:
        body = {"error": self.code, "detail": self.detail}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInput(DomainError):
    code = "invalid"
    http_status = 400


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class Gone(DomainError):
    code = "reset_required"
    http_status = 410


# --- transient database errors ------------------------------------------------------------------------
# One classification for the whole runtime: an error that says "try again" (a deadlock victim, a lock or
# statement timeout, a serialization failure, a dropped connection, SQLite's busy lock) is retried; any
# other database error is permanent and may be recorded as what happened.

TRANSIENT_ATTEMPTS = 4
TRANSIENT_FIRST_DELAY_SECONDS = 0.05
_SQLITE_BUSY = ("database is locked", "database table is locked")


def is_transient_db_error(error: BaseException) -> bool:
    import psycopg
    from django.db import InterfaceError, OperationalError

    cause = error.__cause__ if isinstance(error, OperationalError | InterfaceError) else error
    if isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        # Deadlocks, serialization failures and lock timeouts are OperationalError subclasses in psycopg,
        # as are a dropped or refused connection.
        return True
    if isinstance(error, InterfaceError):
        return True  # "connection already closed"
    return isinstance(error, OperationalError) and any(text in str(error) for text in _SQLITE_BUSY)


def _backoff(seconds: float) -> None:
    time.sleep(seconds)


def retry_transient(work: Callable[..., T], *args: Any, action: str = "db_retry") -> T:
    """Run `work` (one whole transaction), retrying a transient database error with exponential
    backoff, at most TRANSIENT_ATTEMPTS times in all (about 0.35 s of waiting); then the error is
    raised, still transient, for the caller to keep its work for later. Permanent errors raise at once."""
    from django.db import connection

    delay = TRANSIENT_FIRST_DELAY_SECONDS
    for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
        try:
            return work(*args)
        except Exception as error:
            if attempt == TRANSIENT_ATTEMPTS or not is_transient_db_error(error):
                raise
            logger.warning(
                "transient database error (attempt %d): %s", attempt, error, extra={"action": action}
            )
            if connection.connection is not None and not connection.is_usable():
                connection.close()  # a dropped connection: the retry opens a fresh one
            _backoff(delay)
            delay *= 2
    raise AssertionError("unreachable")
