"""Every statement a scheduler wake runs uses an index at 100,000 rows per table (issue 6, item 5): the
wake-plan read, the claim steps and the lease sweeps are captured as they run against a filled database
with nothing due, then EXPLAINed; no sequential scan of a history table may appear."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduling import clock
from scheduling.services import claims, heartbeat_runs, outcomes
from scheduling.wake_plan import read_wake_plan
from tests.conftest import requires_postgres
from tests.history_rows import fill_history

pytestmark = [requires_postgres, pytest.mark.django_db]

ROWS = 100_000


def one_wake_with_nothing_due() -> list[str]:
    """The statements of one wake: the plan (with the presence refresh) and every step it may call."""
    now = clock.now()
    with CaptureQueriesContext(connection) as captured:
        plan = read_wake_plan("explain-worker", announce_started_at=now)
        claims.claim_queued_runs(now, "explain-worker", 200)
        claims.claim_due_occurrences(now, "explain-worker", 250)
        heartbeat_runs.claim_due_heartbeats(now, "explain-worker", 30, 200)
        outcomes.expire_leases(now)
        heartbeat_runs.expire_heartbeat_leases(now)
        outcomes.renew_leases(["hist-run-20000", "hist-hb-20000"], "explain-worker", now)
    assert not plan.job_due(now) and not plan.heartbeat_due(now) and not plan.queued_runs
    assert plan.next_lease_expiry is not None  # the running history rows are seen through the new index
    return [query["sql"] for query in captured.captured_queries]


def sequential_scans(plan: dict[str, Any]) -> set[str]:
    found = {plan["Relation Name"]} if plan.get("Node Type") == "Seq Scan" else set()
    for child in plan.get("Plans", []):
        found |= sequential_scans(child)
    return found


def test_every_statement_of_a_wake_uses_an_index_at_100k_rows_per_table():
    tables = set(fill_history(ROWS))
    # Transaction control, SET and LOCK statements have no plan; everything that reads rows does.
    readers = ("SELECT", "WITH", "UPDATE", "DELETE")
    statements = [sql for sql in one_wake_with_nothing_due() if sql.lstrip().split()[0].upper() in readers]
    assert len(statements) >= 6
    scanned = {}
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0][0]["Plan"]
            if sequential_scans(plan) & tables:
                scanned[sql] = sorted(sequential_scans(plan) & tables)
    assert scanned == {}
