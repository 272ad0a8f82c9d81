"""The shared thread runner that concurrency tests use must not let a failing worker pass."""

from __future__ import annotations

import threading

import pytest

from tests.threads import run_together


def test_run_together_returns_each_workers_result_in_order():
    assert run_together(lambda: 1, lambda: 2) == [1, 2]


def test_a_worker_that_crashed_fails_the_test():
    def crash() -> None:
        raise ValueError("worker crashed")

    with pytest.raises(ValueError, match="worker crashed"):
        run_together(lambda: None, crash)


def test_a_worker_that_never_finishes_fails_the_test():
    release = threading.Event()
    try:
        with pytest.raises(AssertionError, match="still running"):
            run_together(lambda: None, lambda: release.wait(5), timeout=0.5)
    finally:
        release.set()
