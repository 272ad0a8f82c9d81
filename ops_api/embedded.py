"""Background workers of the embedded runtime (`manage.py runtime`). Each worker is a thread running one
of the loops that `run_scheduler` / `run_projector` run as their own processes in production."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass
class Worker:
    name: str
    thread: threading.Thread
    stop: threading.Event


def _loops() -> list[tuple[str, Callable[[threading.Event], None]]]:
    """The loops that run inside the embedded runtime."""
    from calendar_projection.loop import run_forever as run_projector
    from scheduling.scheduler import run_forever

    return [("scheduler", run_forever), ("projector", run_projector)]


def start_workers(names: tuple[str, ...] = ("scheduler", "projector")) -> list[Worker]:
    workers = []
    for name, loop in _loops():
        if name not in names:
            continue
        stop = threading.Event()
        thread = threading.Thread(target=loop, args=(stop,), name=name, daemon=True)
        thread.start()
        workers.append(Worker(name, thread, stop))
        logger.info("started %s", name, extra={"action": "worker_started"})
    return workers


def stop_workers(workers: list[Worker], timeout: float = 10.0) -> None:
    for worker in workers:
        worker.stop.set()
    for worker in workers:
        worker.thread.join(timeout)
