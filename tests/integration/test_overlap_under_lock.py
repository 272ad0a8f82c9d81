"""Two operators act on one `overlap=skip` job at the same moment: an approval of its missed occurrence
and a run-now. Each is held right after its overlap check until the other has made its own; on the old
code (the approval checked without the job lock) both passed and two runs of the job ran at once; now the
second waits for the first's job lock and then sees its run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduling import clock
from scheduling.errors import Conflict
from scheduling.models import CronRun, StasisEntry
from scheduling.services import claims, runs, stasis
from scheduling.services import jobs as job_services
from tests.conftest import job_payload, requires_postgres
from tests.threads import Rendezvous, run_together

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def is_overlap_check(sql: str) -> bool:
    """The "does this job have an active run?" query both services make."""
    return sql.startswith("SELECT 1 AS") and CronRun._meta.db_table in sql


def attempt(name: str, action: Callable[[], Any], rendezvous: Rendezvous) -> Callable[[], str]:
    def run() -> str:
        with clock.frozen(T0 + timedelta(hours=3)), rendezvous.member(name):
            try:
                action()
            except Conflict:
                return "refused"
            return "queued"

    return run


def test_a_concurrent_approval_and_run_now_of_an_overlap_skip_job_never_overlap():
    with clock.frozen(T0):
        job = job_services.create_job(job_payload(every="1h"), None)
    claims.claim_due_occurrences(T0 + timedelta(hours=3), "w", 10)
    entry = StasisEntry.objects.get(status="pending")
    after_check = Rendezvous(2, is_overlap_check)

    answers = run_together(
        attempt("approval", lambda: stasis.approve_backfill_run(entry.entry_id), after_check),
        attempt("run-now", lambda: runs.queue_manual_run(job.job_id, None), after_check),
    )

    assert sorted(answers) == ["queued", "refused"]
    assert CronRun.objects.filter(job_id=job.job_id, status__in=["queued", "running"]).count() == 1
    started = claims.claim_queued_runs(T0 + timedelta(hours=3), "w", 10)
    assert len(started) == 1
