"""The scheduler coalesces rings: a burst of committed writes costs one look, a lone change none extra."""

from __future__ import annotations

import pytest

from scheduling.scheduler import WAKE_COALESCE_SECONDS, Scheduler
from tests.conftest import requires_postgres


def test_a_ring_right_after_a_look_waits_to_share_the_next_one_and_a_ring_after_quiet_does_not():
    scheduler = Scheduler(worker_id="test-coalescing")
    scheduler._last_look = 100.0
    assert scheduler.coalescing_delay(100.002) == pytest.approx(WAKE_COALESCE_SECONDS - 0.002)
    assert scheduler.coalescing_delay(100.0 + WAKE_COALESCE_SECONDS) == 0.0
    assert scheduler.coalescing_delay(160.0) == 0.0
    scheduler._db_executor.shutdown()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_the_schedulers_database_thread_connects_directly_while_the_server_keeps_its_pool():
    """A pool that gave up reconnecting after an outage blocks its caller for the pool's timeout; a lease
    holder blocked like that renews too late (lease_sweep_gate), so the scheduler's thread never pools."""
    from django.db import connection

    scheduler = Scheduler(worker_id="test-direct-connection")
    try:
        scheduler._db_executor.submit(scheduler._use_a_connection_of_its_own).result()
        pooled, answered = scheduler._db_executor.submit(
            lambda: (connection.pool is not None, _select_one(connection))
        ).result()
        assert (pooled, answered) == (False, 1)
        assert connection.pool is not None  # this (server) thread still draws from the pool
    finally:
        scheduler._db_executor.submit(lambda: connection.close()).result()
        scheduler._db_executor.shutdown()


def _select_one(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]
