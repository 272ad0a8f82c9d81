"""What wakes the scheduler: PostgreSQL LISTEN in a background thread (changes committed by any process),
and the in-process doorbell (changes committed by this process; the only source on SQLite)."""

from __future__ import annotations

import logging
import selectors
import threading
from collections.abc import Callable

import psycopg
from django.db import connections

from scheduling.event_log import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)

# The listener thread checks for shutdown this often while no notification arrives. It is a daemon thread
# and a closed connection wakes it at once, so this only bounds how long a stopped listener lingers;
# the scheduler's own safety poll covers anything a dead listener could miss.
LISTEN_TIMEOUT_SECONDS = 300.0


def _conninfo() -> dict:
    params = dict(connections["default"].get_connection_params())
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return params


def start_listener(on_notify: Callable[[], None], stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=_listen, args=(on_notify, stop), name="pg-listener", daemon=True)
    thread.start()
    return thread


def _listen(on_notify: Callable[[], None], stop: threading.Event) -> None:
    backoff = 0.5
    while not stop.is_set():
        try:
            with psycopg.connect(**_conninfo(), autocommit=True) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                backoff = 0.5
                # Anything committed while we were not listening has no notification coming: look now.
                on_notify()
                _wait_for_notifications(conn, on_notify, stop)
        except (psycopg.Error, OSError) as error:
            logger.warning("listener connection lost: %s", error, extra={"action": "listener_reconnect"})
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)


def _wait_for_notifications(
    conn: psycopg.Connection, on_notify: Callable[[], None], stop: threading.Event
) -> None:
    """Block on the socket itself. psycopg's `notifies()` polls every 0.1 s while it waits, which would
    wake an idle scheduler 600 times a minute; select() on the connection's socket wakes only for data."""
    pgconn = conn.pgconn
    with selectors.DefaultSelector() as selector:
        selector.register(conn.fileno(), selectors.EVENT_READ)
        while not stop.is_set():
            if not selector.select(timeout=LISTEN_TIMEOUT_SECONDS):
                continue
            pgconn.consume_input()
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                raise psycopg.OperationalError("listener connection closed")
            heard = False
            while pgconn.notifies() is not None:
                heard = True
            if heard:
                on_notify()
