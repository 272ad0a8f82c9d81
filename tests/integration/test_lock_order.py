"""Lock order, driven (docs/architecture.md, "Lock discipline"): two services that lock the same rows are
held at the point where each has taken its first row lock, then let go together. On the old order
(lease expiry: runs then sessions; finish: sessions then runs) each then waits for the other's row and
PostgreSQL aborts one with DeadlockDetected; with one order the second simply waits for the first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduling.models import HeartbeatRun
from scheduling.services import heartbeat_runs
from scheduling.services import heartbeats as heartbeat_services
from tests.conftest import requires_postgres
from tests.threads import Rendezvous, run_together

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_lease_expiry_and_heartbeat_finish_never_deadlock(frozen_now):
    session = heartbeat_services.upsert_session("s-lock", {"every": "30m"}, None)
    [run] = heartbeat_runs.claim_due_heartbeats(session.next_due_at, "worker-1", 30)
    lapsed = run.lease_expires_at + timedelta(seconds=1)
    after_first_row_lock = Rendezvous(2, lambda sql: "FOR UPDATE" in sql)

    def expire() -> int:
        with after_first_row_lock.member("expiry"):
            return heartbeat_runs.expire_heartbeat_leases(lapsed)

    def finish() -> HeartbeatRun:
        with after_first_row_lock.member("finish"):
            return heartbeat_runs.finish_heartbeat(run.run_id, "success", "HEARTBEAT_OK", "", lapsed)

    expired, finished = run_together(expire, finish)

    run.refresh_from_db()
    # Whichever went first decided the outcome; the other saw a run no longer running.
    assert (expired, run.status) in {(0, "success"), (1, "error")}
    assert finished.status == run.status
    assert HeartbeatRun.objects.filter(status="running").count() == 0
