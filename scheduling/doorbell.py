"""In-process wake-ups after an event commits.

PostgreSQL listeners in other processes hear NOTIFY; listeners in this process (the embedded runtime's
scheduler and projector, push consumers) hear this doorbell, which is rung from `on_commit`. A ring carries
no data: the event table is the truth, the doorbell only says "look again".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()


def subscribe(listener: Callable[[], None]) -> Callable[[], None]:
    """Register a callback (called from whichever thread committed); returns an unsubscribe function."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def ring() -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener()
        except Exception:  # a broken listener must not break the committing caller
            logger.exception("doorbell listener failed", extra={"action": "doorbell_ring"})
