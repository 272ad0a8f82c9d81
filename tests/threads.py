"""Running test workers on threads without letting a crashed one pass for a quiet one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

from tests.processes import wait_for


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


class Rendezvous:
    """Forces an interleaving on PostgreSQL: each member is held right after the first statement that
    matches `point` until every other member has passed that point too, or is blocked waiting for a lock
    (it queues behind this one, so waiting longer would only deadlock the test). No timing involved:
    `pg_stat_activity` says who is waiting for a lock."""

    def __init__(self, members: int, point: Callable[[str], bool]) -> None:
        self.members, self.point = members, point
        self._pids: dict[str, int] = {}
        self._passed: set[str] = set()

    @contextmanager
    def member(self, name: str) -> Iterator[None]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self._pids[name] = cursor.fetchone()[0]
        try:
            with connection.execute_wrapper(self._holder(name)):
                yield
        finally:
            self._passed.add(name)  # a member that finished (or failed) holds nobody up

    def _holder(self, name: str) -> Callable[..., Any]:
        held = False

        def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal held
            result = execute(sql, params, many, context)
            if not held and self.point(sql):
                held = True
                self._passed.add(name)
                wait_for(self._all_met(name), 30, 0.02)
            return result

        return wrapper

    def _all_met(self, name: str) -> Callable[[], bool]:
        def check() -> bool:
            others = [other for other in list(self._pids) if other != name]
            return len(others) == self.members - 1 and all(self._met(other) for other in others)

        return check

    def _met(self, other: str) -> bool:
        if other in self._passed:
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self._pids[other]])
            row = cursor.fetchone()
        return row is not None and row[0] == "Lock"
