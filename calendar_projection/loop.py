"""The projector loop: a thin wrapper around `project_next_batch` and `roll_forward`. It wakes on the
scheduler's NOTIFY (any process committed an event) and on the in-process doorbell (this process did),
with a polling floor in case a notification is lost; the listener reconnects by itself (wakeups.py)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connection

from calendar_projection import publish
from calendar_projection.projector import project_next_batch, roll_forward
from scheduling import clock, doorbell, presence, wakeups

logger = logging.getLogger(__name__)

PRESENCE_EVERY_SECONDS = 25.0
# The materialised future is rolled forward this often (it has half a day of slack, see sources.py).
ROLL_EVERY_SECONDS = 600.0


def poll_floor() -> float:
    """Slowest wake-up with no notification: NOTIFY covers other processes on PostgreSQL; on SQLite
    only the in-process doorbell exists, so another process's events are picked up by this poll."""
    configured = float(settings.UA_PROJECTOR_POLL_SECONDS)
    return configured if connection.vendor == "postgresql" else min(configured, 2.0)


class Projector:
    def __init__(self, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or presence.worker_id("projector")
        self.wake = threading.Event()
        self.events_applied = 0
        self._last_presence = 0.0
        self._last_roll = 0.0

    def run(self, stop: threading.Event) -> None:
        unsubscribe = doorbell.subscribe(self.wake.set)
        listener_stop = threading.Event()
        if connection.vendor == "postgresql":
            wakeups.start_listener(self.wake.set, listener_stop)

        # Shutdown must not wait for the poll floor: a parked thread rings the loop when stop is set.
        def ring_on_stop() -> None:
            stop.wait()
            self.wake.set()

        threading.Thread(target=ring_on_stop, daemon=True).start()
        started = clock.now()
        logger.info("projector %s started", self.worker_id, extra={"action": "projector_started"})
        publish.projector_started_here(True)
        try:
            while not stop.is_set():
                # Cleared before the work: a ring during the work keeps it set, so nothing is slept through.
                self.wake.clear()
                more = self.step(started)
                if not more and not stop.is_set():
                    self.wake.wait(poll_floor())
        finally:
            publish.projector_started_here(False)
            unsubscribe()
            listener_stop.set()
            try:
                presence.retire(self.worker_id)
            except Exception:
                logger.warning("could not retire presence", extra={"action": "projector_stop"})
            connection.close()

    def step(self, started: datetime) -> bool:
        """One round: announce presence, apply a batch, roll the future forward when due. Returns
        whether more work may be waiting."""
        try:
            if time.monotonic() - self._last_presence >= PRESENCE_EVERY_SECONDS:
                presence.announce("projector", self.worker_id, started)
                self._last_presence = time.monotonic()
            applied = project_next_batch()
            self.events_applied += applied
            rolled = 0
            if time.monotonic() - self._last_roll >= ROLL_EVERY_SECONDS:
                rolled = roll_forward()
                if rolled == 0:
                    self._last_roll = time.monotonic()
            return applied > 0 or rolled > 0
        except Exception:
            # Transient (a serialization failure during rebuild, the database restarting): retry soon.
            logger.exception("projector step failed", extra={"action": "projector_error"})
            close_old_connections()
            self.wake.clear()
            self.wake.wait(1.0)
            return False


def run_forever(stop: threading.Event) -> None:
    """Entry point for a thread or process: project until `stop` is set."""
    Projector().run(stop)
