"""`manage.py backfill`: filters, dry run, bulk resolution with one transaction per entry."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from scheduling import clock
from scheduling.models import CronRun, LifecycleEvent, StasisEntry
from scheduling.services import claims
from tests.unit.test_claims_and_misses import T0, WORKER, make_job

pytestmark = pytest.mark.django_db


def missed_jobs(count: int, **overrides) -> list[str]:
    """`count` hourly jobs that were down for 3 h: each has one pending stasis entry."""
    job_ids = [make_job(every="1h", title=f"job {i}", **overrides).job_id for i in range(count)]
    moment = T0 + timedelta(hours=3, minutes=30)
    with clock.frozen(moment):
        while claims.claim_due_occurrences(moment, WORKER, 100)[1]:
            pass
    return job_ids


def backfill(*args: str) -> str:
    out = StringIO()
    with clock.frozen(T0 + timedelta(hours=4)):
        call_command("backfill", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_list_filters_by_job_and_prints_a_count():
    job_ids = missed_jobs(3)
    out = backfill("list", "--job", job_ids[1])
    assert job_ids[1] in out and job_ids[0] not in out
    assert out.strip().endswith("1 entries")


def test_dry_run_describes_each_entry_and_changes_nothing():
    missed_jobs(2)
    before = (LifecycleEvent.objects.count(), CronRun.objects.count())
    out = backfill("approve", "--dry-run")
    assert out.count("would approve") == 2 and "nothing changed" in out
    assert (LifecycleEvent.objects.count(), CronRun.objects.count()) == before
    assert StasisEntry.objects.filter(status="pending").count() == 2


def test_approve_in_bulk_queues_one_backfill_run_per_entry():
    missed_jobs(3)
    out = backfill("approve")
    assert "3 of 3 entries done, 0 failed" in out
    assert not StasisEntry.objects.filter(status="pending").exists()
    assert CronRun.objects.filter(reason="backfill", status="queued").count() == 3


def test_one_failure_does_not_undo_the_others_and_exits_non_zero():
    job_ids = missed_jobs(3)
    # The middle job is running under overlap=skip, so approving its entry is refused.
    running = CronRun.objects.filter(job_id=job_ids[1]).order_by("-scheduled_at").first()
    CronRun.objects.filter(run_id=running.run_id).update(status="running")
    with pytest.raises(SystemExit) as exited:
        backfill("approve")
    assert exited.value.code == 1
    assert StasisEntry.objects.filter(status="approved_and_run").count() == 2
    assert StasisEntry.objects.get(status="pending").source_ref == job_ids[1]


def test_reschedule_takes_a_run_at_and_delete_resolves_with_a_time_filter():
    job_ids = missed_jobs(2)
    out = backfill("reschedule", "--job", job_ids[0], "--run-at", "2026-06-01T18:00:00Z")
    assert "1 of 1 entries done" in out
    copy = StasisEntry.objects.get(source_ref=job_ids[0])
    assert copy.status == "rescheduled"
    assert "0 entries" in backfill("list", "--until", clock.iso(T0))
    out = backfill("delete", "--since", clock.iso(T0))
    assert "1 of 1 entries done" in out
    assert StasisEntry.objects.get(source_ref=job_ids[1]).status == "deleted"


def test_a_large_batch_shows_a_progress_bar_on_stderr():
    missed_jobs(25)
    err = StringIO()
    with clock.frozen(T0 + timedelta(hours=4)):
        call_command("backfill", "delete", stdout=StringIO(), stderr=err)
    assert StasisEntry.objects.filter(status="deleted").count() == 25
    assert "25/25" in err.getvalue()
