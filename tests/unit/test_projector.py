"""The projector's step functions: order-independence (shuffled and repeated events), replay and restart,
the rebuild when its position falls out of the log's retention, and the ordering rules one by one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from calendar_projection.applying import Batch, Fact
from calendar_projection.models import CalendarEntry, CalendarSource, CalendarStasisEntry, ProjectionState
from calendar_projection.projector import project_next_batch, rebuild
from scheduling import clock
from scheduling.dispatch import Outcome
from scheduling.models import LifecycleEvent
from scheduling.services import claims, heartbeat_runs, heartbeats, outcomes, stasis
from scheduling.services import jobs as job_services

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WORKER = "scheduler:test:1"


def claim_and_finish(at: datetime, fail: set[str] = frozenset(), hold: set[str] = frozenset()) -> None:
    with clock.frozen(at):
        while True:
            started, more = claims.claim_due_occurrences(at, WORKER, 100)
            results = [
                (d.run_id, Outcome("error", error="boom") if d.job_id in fail else Outcome("success"))
                for d in started
                if d.job_id not in hold
            ]
            outcomes.record_outcomes(results, at) if results else None
            if not more:
                break
        for run in heartbeat_runs.claim_due_heartbeats(at, WORKER, 30, 100):
            outcomes.record_heartbeat_results([(run.run_id, Outcome("success", "HEARTBEAT_OK"))], at)


def small_history() -> datetime:
    """Jobs of every kind with runs in every status, misses in stasis (one approved), a deleted job
    with history, a heartbeat session. Returns the instant it ends at."""
    with clock.frozen(T0):
        hourly = job_services.create_job(
            {"command": "a", "cron_expr": "0 * * * *", "timezone": "Europe/Berlin"}, None
        )
        failing = job_services.create_job(
            {"command": "b", "every": "30m", "target": {"type": "handler", "name": "fail"}}, "bob"
        )
        slow = job_services.create_job({"command": "c", "every": "20m"}, "alice")
        doomed = job_services.create_job({"command": "d", "every": "15m"}, None)
        job_services.create_job({"command": "e", "run_at": "2026-06-03T09:00:00Z"}, None)
        heartbeats.upsert_session("s-1", {"every": "1h"}, None)
    for minutes in (15, 20, 30, 40, 45, 60):
        claim_and_finish(T0 + timedelta(minutes=minutes), fail={failing.job_id}, hold={slow.job_id})
    with clock.frozen(T0 + timedelta(minutes=61)):
        job_services.update_job(hourly.job_id, {"title": "renamed"}, None, partial=True)
        job_services.delete_job(doomed.job_id, None)
    end = T0 + timedelta(hours=4, minutes=30)  # after a downtime: misses, stasis entries
    claim_and_finish(end, fail={failing.job_id}, hold={slow.job_id})
    with clock.frozen(end):
        entry = next(e for e in stasis.list_entries(None).rows if e.source_ref == hourly.job_id)
        stasis.approve_backfill_run(entry.entry_id)
        started = claims.claim_queued_runs(end, WORKER, 10)
        outcomes.record_outcomes([(d.run_id, Outcome("success")) for d in started], end)
    return end


def visible_state(now: datetime) -> dict:
    entries = {
        row.event_id: (row.status, row.run_id, row.run_status, row.scheduled_at, row.owner_id, row.source_ref)
        for row in CalendarEntry.objects.all()
        if row.run_id or row.scheduled_at >= now
    }
    sources = {
        (row.source, row.source_ref): (row.kind, row.title, row.enabled, row.deleted, row.definition_seq,
                                       row.cron_expr, row.every_seconds, row.anchor_at, row.next_due_at)
        for row in CalendarSource.objects.all()
    }  # fmt: skip
    # Pending entries are what the feed shows; resolved ones are kept only as tombstones against late
    # `created` events (a rebuild, which continues after the log head, needs none).
    stasis_rows = set(CalendarStasisEntry.objects.filter(status="pending").values_list("entry_id", flat=True))
    return {"entries": entries, "sources": sources, "stasis": stasis_rows}


def wipe() -> None:
    CalendarEntry.objects.all().delete()
    CalendarSource.objects.all().delete()
    CalendarStasisEntry.objects.all().delete()


def feed(facts: list[Fact], now: datetime, chunk: int) -> None:
    for start in range(0, len(facts), chunk):
        batch = Batch(now=now)
        part = facts[start : start + chunk]
        batch.load(part)
        for fact in part:
            batch.apply(fact)
        batch.flush()


def all_facts() -> list[Fact]:
    return [
        Fact(e.seq, e.event_type, e.source, e.source_ref, e.status, e.payload)
        for e in LifecycleEvent.objects.order_by("seq")
    ]


def test_shuffled_and_repeated_events_end_in_the_same_state_as_the_in_order_feed():
    now = small_history()
    clock.set_frozen(now)
    facts = all_facts()
    assert len(facts) > 40
    feed(facts, now, chunk=500)
    in_order = visible_state(now)
    assert any(status == "running" for status, *_ in in_order["entries"].values())
    for seed in (1, 2, 3):
        wipe()
        rng = random.Random(seed)
        disordered = facts + rng.sample(facts, len(facts) // 2)  # repeats too
        rng.shuffle(disordered)
        feed(disordered, now, chunk=rng.choice((1, 7, 50)))
        assert visible_state(now) == in_order, seed


def test_a_replayed_batch_is_a_no_op_and_a_restart_resumes_where_it_stopped():
    now = small_history()
    clock.set_frozen(now)
    while project_next_batch():
        pass
    state = ProjectionState.objects.get()
    before = visible_state(now)
    assert state.last_event_seq == LifecycleEvent.objects.order_by("-seq").first().seq
    assert project_next_batch() == 0  # a restart finds nothing to do
    ProjectionState.objects.update(last_event_seq=state.last_event_seq - 25)  # replay the tail
    assert project_next_batch() == 25
    assert visible_state(now) == before
    replayed = ProjectionState.objects.get()
    assert replayed.last_event_seq == state.last_event_seq and replayed.version > state.version


def test_a_position_outside_the_retained_log_rebuilds_from_the_domain_tables(operator):
    with clock.frozen(T0 - timedelta(hours=1)):
        project_next_batch()  # built while the log was empty
    now = small_history()
    clock.set_frozen(now)
    head = LifecycleEvent.objects.order_by("-seq").first()
    LifecycleEvent.objects.filter(seq__lt=head.seq - 5).delete()  # retention trimmed what we need
    version = ProjectionState.objects.get().version
    assert project_next_batch() == 1  # the rebuild
    state = ProjectionState.objects.get()
    assert (state.last_event_seq, state.last_event_at) == (head.seq, head.occurred_at)
    assert state.version == version + 1
    for projection in (True, False):
        with override_settings(UA_SCHED_EVENT_PROJECTION_ENABLED=projection):
            body = operator.get("/api/v1/ops/calendar/events", {"start": "2026-06-01"}).json()
        keys = {(e["event_id"], e["status"]) for e in body["events"]}
        if projection:
            projected = keys
    assert projected == keys and len(keys) > 30


def test_rebuild_never_lowers_the_version():
    with clock.frozen(T0):
        job_services.create_job({"command": "a", "every": "1h"}, None)
        while project_next_batch():
            pass
        version = ProjectionState.objects.get().version
        rebuild()
        assert ProjectionState.objects.get().version == version + 1


def fact(seq: int, event_type: str, ref: str, payload: dict, status: str = "") -> Fact:
    return Fact(seq, event_type, "cron", ref, status, payload)


def run_payload(run_id: str, status: str, attempt: int = 1, created: float = 1780315200.0) -> dict:
    return {"run": {"run_id": run_id, "status": status, "attempt": attempt, "created_at": created,
                    "occurrence_id": "cron|job_x|1780315200", "scheduled_at_utc": "2026-06-01T12:00:00Z",
                    "owner_id": ""}}  # fmt: skip


def test_a_terminal_state_supersedes_started_whatever_the_order():
    with clock.frozen(T0):
        feed([fact(9, "cron_run_completed", "job_x", run_payload("r1", "success")),
              fact(8, "cron_run_started", "job_x", run_payload("r1", "running"))], T0, 500)  # fmt: skip
        assert CalendarEntry.objects.get().status == "success"
        feed([fact(8, "cron_run_started", "job_x", run_payload("r1", "running"))], T0, 500)
        assert CalendarEntry.objects.get().status == "success"


def test_a_backfill_attempt_wins_over_the_missed_run_of_its_occurrence():
    with clock.frozen(T0):
        feed([fact(5, "cron_run_completed", "job_x", run_payload("r2", "success", attempt=2)),
              fact(3, "cron_run_missed", "job_x", run_payload("r1", "missed"))], T0, 1)  # fmt: skip
        assert CalendarEntry.objects.get().run_id == "r2"


def test_a_created_after_a_deleted_never_brings_a_job_back():
    job = {"job_id": "job_x", "command": "a", "schedule_kind": "every", "every_seconds": 3600,
           "enabled": True, "anchor_at_utc": "2026-06-01T12:00:00Z"}  # fmt: skip
    with clock.frozen(T0):
        feed([fact(7, "cron_job_deleted", "job_x", {"job": job}, "deleted")], T0, 500)
        feed([fact(3, "cron_job_created", "job_x", {"job": job}, "enabled")], T0, 500)
        feed([fact(9, "cron_job_updated", "job_x", {"job": job}, "enabled")], T0, 500)
        source = CalendarSource.objects.get()
        assert source.deleted and CalendarEntry.objects.count() == 0


def test_materialised_text_keeps_tabs_newlines_backslashes_and_unicode_in_titles_exactly():
    """A new hourly job's 360 rows go through COPY's text format on PostgreSQL (sources._copy_line), which
    escapes backslash, tab, newline and carriage return: each body must read back as the JSON it was."""
    import json

    title = 'tab\there\nnew "line" \\ back\\slash \r\u00e9\u2603 \\N'
    with clock.frozen(T0):
        job = job_services.create_job({"command": "x\ty", "every": "1h", "title": title}, "o\\wner")
        while project_next_batch():
            pass
    rows = list(CalendarEntry.objects.filter(source_ref=job.job_id, run_id=""))
    assert len(rows) >= 350  # 15 days of an hourly job: more than COPY_FROM, so COPY writes them
    for row in rows:
        body = json.loads(row.body)
        assert (body["title"], body["event_id"], row.owner_id) == (title, row.event_id, "o\\wner")


def test_the_collector_pause_nests_and_restores_the_collector_as_it_found_it():
    import gc

    from calendar_projection.projector import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
