"""Claiming, missed-run detection, stasis and notifications, driven step by step with a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling import clock
from scheduling.dispatch import Outcome
from scheduling.errors import Conflict
from scheduling.models import CronJob, CronRun, LifecycleEvent, Notification, StasisEntry
from scheduling.services import claims, outcomes, stasis
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WORKER = "scheduler:test:1"


def make_job(**overrides):
    with clock.frozen(T0):
        return job_services.create_job(job_payload(**overrides), None)


def claim_at(moment, limit=100):
    """Claim everything due at `moment`, as the loop would by calling the step until nothing is left."""
    started = []
    with clock.frozen(moment):
        while True:
            batch, more = claims.claim_due_occurrences(moment, WORKER, limit)
            started += batch
            if not more:
                return started


def finish(dispatches, status="success", at=None, error=""):
    with clock.frozen(at or clock.now()):
        return outcomes.record_outcomes(
            [(d.run_id, Outcome(status, error=error)) for d in dispatches], clock.now()
        )


def run_events(run_id):
    return list(
        LifecycleEvent.objects.filter(payload__run_id=run_id)
        .order_by("seq")
        .values_list("event_type", flat=True)
    )


def test_due_occurrence_starts_one_run_and_advances_next_run():
    job = make_job(every="1h")
    due = T0 + timedelta(hours=1)
    assert claim_at(due - timedelta(seconds=1)) == []
    started = claim_at(due)
    assert len(started) == 1 and started[0].body["command"] == job.command
    run = CronRun.objects.get(run_id=started[0].run_id)
    assert (run.status, run.scheduled_at, run.started_at, run.lease_owner) == ("running", due, due, WORKER)
    assert CronJob.objects.get(job_id=job.job_id).next_run_at == due + timedelta(hours=1)
    assert claim_at(due) == []


def test_every_run_emits_exactly_one_started_then_one_terminal_event_with_its_run_id():
    make_job(every="1h")
    first = claim_at(T0 + timedelta(hours=1))
    finish(first)
    second = claim_at(T0 + timedelta(hours=2))
    finish(second, status="error", error="boom")
    assert run_events(first[0].run_id) == ["cron_run_started", "cron_run_completed"]
    assert run_events(second[0].run_id) == ["cron_run_started", "cron_run_failed"]


def test_overlap_skip_records_a_skipped_run_with_reason():
    make_job(every="1h")
    claim_at(T0 + timedelta(hours=1))
    assert claim_at(T0 + timedelta(hours=2)) == []
    skipped = CronRun.objects.get(status="skipped")
    assert "still running" in skipped.error
    assert run_events(skipped.run_id) == ["cron_run_completed"]


def test_overlap_allow_runs_both():
    make_job(every="1h", overlap="allow")
    claim_at(T0 + timedelta(hours=1))
    assert len(claim_at(T0 + timedelta(hours=2))) == 1


def test_late_start_within_grace_runs_normally():
    make_job(every="1h")
    assert len(claim_at(T0 + timedelta(hours=1, seconds=59))) == 1
    assert not CronRun.objects.filter(status="missed").exists()


def test_downtime_records_each_missed_occurrence_and_one_stasis_entry():
    job = make_job(every="1h")
    started = claim_at(T0 + timedelta(hours=10, seconds=30))
    missed = CronRun.objects.filter(status="missed").order_by("scheduled_at")
    assert [r.scheduled_at for r in missed] == [T0 + timedelta(hours=h) for h in range(1, 10)]
    # The 10h occurrence is 30 s late, within the grace: it runs.
    assert len(started) == 1 and CronRun.objects.get(run_id=started[0].run_id).scheduled_at == T0 + timedelta(
        hours=10
    )
    entry = StasisEntry.objects.get()
    assert (entry.status, entry.scheduled_at) == ("pending", T0 + timedelta(hours=9))
    assert entry.event_id == f"cron|{job.job_id}|{int((T0 + timedelta(hours=9)).timestamp())}"
    assert LifecycleEvent.objects.filter(event_type="cron_run_missed").count() == 9
    assert LifecycleEvent.objects.filter(event_type="stasis_entry_created").count() == 1
    notification = Notification.objects.get(kind="run_missed")
    assert "9 occurrences" in notification.title and notification.actions


def test_a_newer_miss_supersedes_the_pending_entry():
    make_job(every="1h")
    claim_at(T0 + timedelta(hours=3))
    first = StasisEntry.objects.get()
    claim_at(T0 + timedelta(hours=6))
    first.refresh_from_db()
    assert first.status == "skipped_superseded"
    assert StasisEntry.objects.filter(status="pending").count() == 1


def test_month_of_downtime_is_bounded_and_still_counted(settings):
    settings.UA_MISSED_RUN_RECORD_LIMIT = 50
    make_job(every=None, cron_expr="* * * * *", missed_policy="stasis", overlap="allow")
    claim_at(T0 + timedelta(days=30))
    missed = CronRun.objects.filter(status="missed")
    assert missed.count() == 50
    oldest = missed.order_by("scheduled_at").first()
    assert "earlier occurrences were missed too" in oldest.error
    omitted = int(oldest.error.split("; ")[1].split()[0])
    assert abs(omitted + 50 - 30 * 24 * 60) <= 2
    assert StasisEntry.objects.filter(status="pending").count() == 1


def test_skip_policy_records_misses_without_stasis():
    make_job(every="1h", missed_policy="skip")
    claim_at(T0 + timedelta(hours=5))
    assert CronRun.objects.filter(status="missed").count() == 4
    assert not StasisEntry.objects.exists()


def test_run_once_policy_runs_one_catch_up():
    make_job(every="1h", missed_policy="run_once")
    started = claim_at(T0 + timedelta(hours=4, minutes=30))
    assert len(started) == 1
    run = CronRun.objects.get(run_id=started[0].run_id)
    assert (run.reason, run.scheduled_at) == ("catch_up", T0 + timedelta(hours=4))
    assert CronRun.objects.filter(status="missed").count() == 3


def test_approve_backfill_runs_with_the_original_scheduled_at_once():
    make_job(every="1h")
    claim_at(T0 + timedelta(hours=2, minutes=30))
    entry = StasisEntry.objects.get(status="pending")
    with clock.frozen(T0 + timedelta(hours=3)):
        run = stasis.approve_backfill_run(entry.entry_id)
        assert (run.status, run.reason, run.scheduled_at, run.attempt) == (
            "queued",
            "backfill",
            entry.scheduled_at,
            2,
        )
        with pytest.raises(Conflict):
            stasis.approve_backfill_run(entry.entry_id)
        started = claims.claim_queued_runs(clock.now(), WORKER, 10)
    assert [d.run_id for d in started] == [run.run_id]
    assert started[0].body["scheduled_at"] == entry.scheduled_at.timestamp()
    entry.refresh_from_db()
    assert entry.status == "approved_and_run" and entry.resolution_run_id == run.run_id
    assert LifecycleEvent.objects.filter(event_type="stasis_entry_resolved").count() == 1


def test_reschedule_makes_a_one_shot_copy_and_delete_resolves():
    job = make_job(every="1h")
    claim_at(T0 + timedelta(hours=2, minutes=30))
    entry = StasisEntry.objects.get(status="pending")
    with clock.frozen(T0 + timedelta(hours=3)):
        copy = stasis.reschedule(entry.entry_id)
    assert copy.schedule_kind == "at" and copy.run_at == T0 + timedelta(hours=4)
    assert copy.metadata["backfill_for_job_id"] == job.job_id and copy.delete_after_run
    entry.refresh_from_db()
    assert entry.status == "rescheduled"
    claim_at(T0 + timedelta(hours=5, minutes=30))
    newer = StasisEntry.objects.get(status="pending", source_ref=job.job_id)
    assert stasis.delete_missed(newer.event_id).status == "deleted"
    with pytest.raises(Conflict):
        stasis.delete_missed(newer.entry_id)


def test_lost_scheduler_leaves_no_run_running_after_the_lease(settings):
    make_job(every="1h")
    started = claim_at(T0 + timedelta(hours=1))
    lapse = T0 + timedelta(hours=1, seconds=settings.UA_RUN_LEASE_SECONDS + 1)
    with clock.frozen(lapse):
        expired = outcomes.expire_leases(lapse)
    assert [r.run_id for r in expired] == [started[0].run_id]
    run = CronRun.objects.get(run_id=started[0].run_id)
    assert run.status == "error" and run.error.startswith("scheduler lost")
    assert run_events(run.run_id) == ["cron_run_started", "cron_run_failed"]
    assert Notification.objects.filter(kind="run_failed").count() == 1
    # A late outcome from the lost scheduler changes nothing.
    assert finish(started, at=lapse) == []


def test_callback_target_times_out_after_the_job_timeout():
    make_job(every="1h", timeout_seconds=120)
    started = claim_at(T0 + timedelta(hours=1))
    with clock.frozen(T0 + timedelta(hours=1)):
        outcomes.record_outcomes([(started[0].run_id, Outcome("deferred"))], clock.now())
    assert CronRun.objects.get(run_id=started[0].run_id).status == "running"
    later = T0 + timedelta(hours=1, seconds=121)
    outcomes.expire_leases(later)
    run = CronRun.objects.get(run_id=started[0].run_id)
    assert run.error == "execution timed out after 120s"


def test_repeated_failures_collapse_into_one_notification_and_success_resolves_it():
    make_job(every="1h", overlap="allow")
    for hour in (1, 2, 3):
        finish(claim_at(T0 + timedelta(hours=hour)), status="error", error=f"fail {hour}")
    live = Notification.objects.get(kind="run_failed", status="live")
    assert live.count == 3 and live.detail == "fail 3"
    finish(claim_at(T0 + timedelta(hours=4)))
    assert not Notification.objects.filter(kind="run_failed", status="live").exists()


def test_low_priority_jobs_raise_no_notifications():
    make_job(every="1h", priority="low", overlap="allow")
    claim_at(T0 + timedelta(hours=3))
    finish(claim_at(T0 + timedelta(hours=4)), status="error", error="x")
    assert not Notification.objects.exists()


def test_delete_after_run_removes_the_job_after_success():
    job = make_job(every=None, run_at="10m", delete_after_run=True)
    started = claim_at(T0 + timedelta(minutes=10))
    assert CronJob.objects.get(job_id=job.job_id).next_run_at is None
    finish(started)
    assert not CronJob.objects.filter(job_id=job.job_id).exists()
    assert CronRun.objects.get(run_id=started[0].run_id).status == "success"


def test_daily_chicago_job_fires_at_the_right_instants_across_both_dst_transitions():
    with clock.frozen(datetime(2026, 3, 6, 12, tzinfo=UTC)):
        job_services.create_job(
            job_payload(every=None, cron_expr="30 2 * * *", timezone="America/Chicago", overlap="allow"), None
        )
    fired = []
    for _ in range(4):
        job = CronJob.objects.get()
        fired.append(job.next_run_at)
        claim_at(job.next_run_at)
    assert fired == [
        datetime(2026, 3, 7, 8, 30, tzinfo=UTC),  # 02:30 CST
        datetime(2026, 3, 8, 8, 30, tzinfo=UTC),  # 02:30 does not exist: 03:30 CDT, once
        datetime(2026, 3, 9, 7, 30, tzinfo=UTC),  # 02:30 CDT
        datetime(2026, 3, 10, 7, 30, tzinfo=UTC),
    ]


def test_next_run_set_back_by_hand_never_runs_an_occurrence_twice_or_stalls_other_jobs():
    stuck = make_job(every="1h", overlap="allow")
    other = make_job(every="1h", overlap="allow")
    claim_at(T0 + timedelta(hours=3))
    before = CronRun.objects.filter(job_id=stuck.job_id).count()
    # Back by 2.5 h and off the hour grid, as a hand edit might leave it.
    CronJob.objects.filter(job_id=stuck.job_id).update(next_run_at=T0 + timedelta(minutes=30, seconds=17))
    started = claim_at(T0 + timedelta(hours=4))
    keys = list(CronRun.objects.filter(job_id=stuck.job_id).values_list("scheduled_at", "attempt"))
    assert len(keys) == len(set(keys)) and len(keys) >= before
    assert other.job_id in {d.job_id for d in started}


def test_a_job_whose_stored_schedule_is_broken_is_parked_with_a_notification():
    broken = make_job(every=None, cron_expr="0 9 * * *", overlap="allow")
    healthy = make_job(every="1h")
    CronJob.objects.filter(job_id=broken.job_id).update(cron_expr="not a cron", next_run_at=T0)
    started = claim_at(T0 + timedelta(hours=1))
    assert [d.job_id for d in started] == [healthy.job_id]
    assert CronJob.objects.get(job_id=broken.job_id).next_run_at is None
    assert Notification.objects.get(kind="schedule_invalid").source_ref == broken.job_id


def test_an_outcome_that_cannot_be_stored_still_finishes_its_run_and_spares_the_batch(monkeypatch):
    from django.db import DataError

    make_job(every="1h", overlap="allow", title="a")
    make_job(every="1h", overlap="allow", title="b")
    started = claim_at(T0 + timedelta(hours=1))
    real_finish = outcomes._finish

    def refusing_finish(run, status, output, error, now):
        if output == "poison":
            raise DataError("cannot store this")
        real_finish(run, status, output, error, now)

    monkeypatch.setattr(outcomes, "_finish", refusing_finish)
    results = [
        (started[0].run_id, Outcome("success", output="poison")),
        (started[1].run_id, Outcome("success")),
    ]
    finished, unrecorded = outcomes.record_outcomes_resilient(results, T0 + timedelta(hours=1))
    assert (finished, unrecorded) == (2, [])
    poisoned = CronRun.objects.get(run_id=started[0].run_id)
    assert poisoned.status == "error" and "could not be recorded" in poisoned.error
    assert CronRun.objects.get(run_id=started[1].run_id).status == "success"


def test_target_answers_are_cleaned_of_text_the_database_cannot_store():
    outcome = Outcome("success", output="a\x00b\ud800c", error="\x00")
    assert (outcome.output, outcome.error) == ("abc", "")


def test_recovery_after_long_downtime_is_paced_in_bounded_transactions(settings, monkeypatch):
    settings.UA_MISSED_RUN_RECORD_LIMIT = 30
    monkeypatch.setattr(claims, "CLAIM_ROW_BUDGET", 50)
    for index in range(6):
        make_job(every=None, cron_expr="* * * * *", title=f"minutely {index}", overlap="allow")
    later = T0 + timedelta(days=30)
    sizes = []
    with clock.frozen(later):
        while True:
            before = CronRun.objects.count()
            _, more = claims.claim_due_occurrences(later, WORKER, 100)
            sizes.append(CronRun.objects.count() - before)
            if not more:
                break
    assert max(sizes) <= 50 + 30  # the budget, overshot by at most one job's rows
    assert len(sizes) > 3  # the catch-up took several short transactions, not one long one
    assert StasisEntry.objects.filter(status="pending").count() == 6
    assert CronRun.objects.filter(status="missed").count() == 6 * 30


def test_a_schedule_change_over_a_due_occurrence_records_it_as_skipped():
    job = make_job(every="1h")
    due = T0 + timedelta(hours=1)
    with clock.frozen(due + timedelta(seconds=1)):
        job_services.update_job(job.job_id, {"every": "2h"}, None, partial=True)
    skipped = CronRun.objects.get(job_id=job.job_id)
    assert (skipped.status, skipped.scheduled_at) == ("skipped", due)
    assert "schedule changed" in skipped.error
    assert run_events(skipped.run_id) == ["cron_run_completed"]


def test_backfill_approval_respects_overlap_skip():
    make_job(every="1h")
    claim_at(
        T0 + timedelta(hours=2, minutes=30)
    )  # misses, and the 2h30 job... runs the 3h? no: leaves one running
    entry = StasisEntry.objects.get(status="pending")
    with clock.frozen(T0 + timedelta(hours=3)):
        claim_at(T0 + timedelta(hours=3))  # starts the 3h occurrence: the job is now running
        with pytest.raises(Conflict):
            stasis.approve_backfill_run(entry.entry_id)
