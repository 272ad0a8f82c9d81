"""Running test workers on threads without letting a crashed one pass for a quiet one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_together(*workers: Callable[[], Any], timeout: float = 30.0) -> list[Any]:
    """Start each worker on its own thread (and database connection), released together by a barrier;
    join every one with a deadline and re-raise the first error. Returns their results in order.

    A bare `thread.join()` hides both a worker that raised (its traceback goes to stderr, the test goes on)
    and one still blocked (a deadlock looks like a pass); this fails the test on either."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)
    errors: list[BaseException | None] = [None] * len(workers)

    def body(index: int, worker: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout)
            results[index] = worker()
        except BaseException as error:  # re-raised in the test's thread below
            errors[index] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=body, args=(i, w), name=f"test-worker-{i}", daemon=True)
        for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        raise AssertionError(f"workers still running after {timeout}s (blocked or deadlocked): {stuck}")
    for error in errors:
        if error is not None:
            raise error
    return results
