"""The scheduler coalesces rings: a burst of committed writes costs one look, a lone change none extra."""

from __future__ import annotations

import pytest

from scheduling.scheduler import WAKE_COALESCE_SECONDS, Scheduler


def test_a_ring_right_after_a_look_waits_to_share_the_next_one_and_a_ring_after_quiet_does_not():
    scheduler = Scheduler(worker_id="test-coalescing")
    scheduler._last_look = 100.0
    assert scheduler.coalescing_delay(100.002) == pytest.approx(WAKE_COALESCE_SECONDS - 0.002)
    assert scheduler.coalescing_delay(100.0 + WAKE_COALESCE_SECONDS) == 0.0
    assert scheduler.coalescing_delay(160.0) == 0.0
    scheduler._db_executor.shutdown()
