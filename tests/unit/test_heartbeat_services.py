"""Heartbeat services: claiming, skipping, waking, system events and reply summaries, on whichever
database the run uses (one body for SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduling import clock
from scheduling.errors import InvalidInput, NotFound
from scheduling.models import HeartbeatRun, HeartbeatSession, LifecycleEvent, SystemEvent, WakeRequest
from scheduling.services import heartbeat_runs
from scheduling.services import heartbeats as services
from scheduling.wake_plan import read_wake_plan
from tests.conftest import requires_postgres
from tests.threads import run_together

pytestmark = pytest.mark.django_db

BUSY_RETRY = timedelta(seconds=15)


def make_session(session_id: str = "s-1", **config) -> HeartbeatSession:
    config.setdefault("every", "30m")
    return services.upsert_session(session_id, config, None)


def claim(now, limit: int = 100) -> list[HeartbeatRun]:
    return heartbeat_runs.claim_due_heartbeats(now, "worker-1", 30, limit)


def reload(session: HeartbeatSession) -> HeartbeatSession:
    return HeartbeatSession.objects.get(session_id=session.session_id)


def heartbeat_events() -> list[tuple[str, str | None]]:
    return [
        (event.event_type, event.payload.get("run_id"))
        for event in LifecycleEvent.objects.order_by("seq")
        if event.source == "heartbeat"
    ]


def due_time(session: HeartbeatSession):
    return reload(session).next_due_at


# --- configuration ---------------------------------------------------------------------------------


def test_new_session_is_due_one_interval_from_now_and_announced_once(frozen_now):
    session = make_session(every="45m")
    assert session.next_due_at == frozen_now + timedelta(minutes=45)
    assert [event for event, _ in heartbeat_events()] == ["heartbeat_scheduled"]
    make_session(every="45m")  # the same config again changes nothing
    assert len(heartbeat_events()) == 1


def test_changing_the_interval_re_arms_the_session(frozen_now):
    make_session(every="45m")
    clock.advance(timedelta(minutes=10))
    session = make_session(every="1h")
    assert session.next_due_at == frozen_now + timedelta(minutes=70)
    assert [event for event, _ in heartbeat_events()] == ["heartbeat_scheduled", "heartbeat_scheduled"]


def test_disabled_session_is_never_due_or_claimed(frozen_now):
    make_session(enabled=False)
    assert read_wake_plan("w").next_heartbeat_at is None
    assert claim(frozen_now + timedelta(days=1)) == []


def test_next_heartbeat_due_is_the_earliest_enabled_session(frozen_now):
    make_session("a", every="2h")
    make_session("b", every="1h")
    make_session("c", every="10m", enabled=False)
    # The scheduler learns when heartbeats are next due from its one wake-plan statement.
    assert read_wake_plan("w").next_heartbeat_at == frozen_now + timedelta(hours=1)


def test_deleting_a_session_keeps_its_runs_as_history(frozen_now):
    session = make_session()
    claim(session.next_due_at)
    assert services.delete_session("s-1", None) == "s-1"
    assert not HeartbeatSession.objects.exists() and HeartbeatRun.objects.count() == 1
    with pytest.raises(NotFound):
        services.get_session("s-1", None)


# --- claiming --------------------------------------------------------------------------------------


def test_due_heartbeat_starts_once_and_arms_the_next_tick(frozen_now):
    session = make_session()
    due = session.next_due_at
    [run] = claim(due)
    assert run.status == "running" and run.reason == "interval" and run.started_at == due
    assert run.scheduled_at == due and run.lease_owner == "worker-1"
    assert run.lease_expires_at == due + timedelta(seconds=30)
    assert due_time(session) == due + timedelta(minutes=30)
    assert claim(due) == []  # a second claim at the same moment finds nothing due


def test_scheduler_bookkeeping_emits_no_heartbeat_scheduled(frozen_now):
    session = make_session()
    [run] = claim(session.next_due_at)
    heartbeat_runs.finish_heartbeat(run.run_id, "success", "HEARTBEAT_OK", "", session.next_due_at)
    assert [event for event, _ in heartbeat_events()].count("heartbeat_scheduled") == 1


def test_busy_session_is_skipped_and_retried_soon(frozen_now):
    session = make_session()
    services.set_busy("s-1", True, None)
    due = session.next_due_at
    assert claim(due) == []
    skipped = HeartbeatRun.objects.get()
    assert skipped.status == "skipped" and skipped.reason == "busy"
    assert heartbeat_events()[-1] == ("heartbeat_skipped", skipped.run_id)
    assert due_time(session) == due + BUSY_RETRY


def test_going_idle_after_a_busy_skip_makes_the_heartbeat_due_now(frozen_now):
    session = make_session()
    services.set_busy("s-1", True, None)
    claim(session.next_due_at)
    clock.set_frozen(session.next_due_at + timedelta(seconds=5))
    services.set_busy("s-1", False, None)
    assert due_time(session) == clock.now()
    [run] = claim(clock.now())
    assert run.status == "running"


def test_going_idle_after_a_late_busy_skip_still_makes_the_heartbeat_due_now(frozen_now):
    session = make_session()
    services.set_busy("s-1", True, None)
    late = session.next_due_at + timedelta(minutes=5)
    claim(late)  # records the miss, then the busy skip, at the same instant
    assert sorted(HeartbeatRun.objects.values_list("status", flat=True)) == ["missed", "skipped"]
    clock.set_frozen(late + timedelta(seconds=1))
    services.set_busy("s-1", False, None)
    assert due_time(session) == clock.now()


def test_going_idle_without_a_waiting_heartbeat_leaves_the_schedule_alone(frozen_now):
    session = make_session()
    services.set_busy("s-1", True, None)
    services.set_busy("s-1", False, None)
    assert due_time(session) == session.next_due_at


def test_still_running_heartbeat_makes_the_next_tick_skip_instead_of_overlapping(frozen_now):
    session = make_session(every="1m")
    [first] = claim(session.next_due_at)
    later = session.next_due_at + timedelta(minutes=1)
    assert claim(later) == []
    skipped = HeartbeatRun.objects.get(status="skipped")
    assert skipped.reason == "running" and due_time(session) == later + BUSY_RETRY
    heartbeat_runs.finish_heartbeat(first.run_id, "success", "HEARTBEAT_OK", "", later)
    assert len(claim(later + BUSY_RETRY)) == 1


def test_outside_active_hours_the_heartbeat_is_skipped_until_the_window_opens(frozen_now):
    # frozen_now is 12:00 UTC; the window is 14:00-18:00 UTC.
    session = make_session(every="30m", active_hours="14:00-18:00")
    due = session.next_due_at
    assert claim(due) == []
    skipped = HeartbeatRun.objects.get()
    assert (skipped.status, skipped.reason) == ("skipped", "outside_active_hours")
    opens = frozen_now.replace(hour=14)
    assert due_time(session) == opens
    [run] = claim(opens)
    assert run.status == "running"


def test_skip_outside_active_hours_waits_for_the_later_of_the_window_and_the_interval(frozen_now):
    session = make_session(every="2h", active_hours="14:30-23:00")
    claim(session.next_due_at)  # 14:00: the window opens at 14:30, the interval ends at 16:00
    assert due_time(session) == frozen_now.replace(hour=16)
    late_session = make_session("s-2", every="2h", active_hours="12:00-12:45")
    claim(late_session.next_due_at)  # 14:00: the window closed; it opens again tomorrow
    assert due_time(late_session) == frozen_now.replace(hour=12) + timedelta(days=1)


def test_missed_heartbeat_after_the_grace_is_recorded_then_caught_up(frozen_now):
    session = make_session()
    late = session.next_due_at + timedelta(minutes=5)
    [run] = claim(late)
    missed = HeartbeatRun.objects.get(status="missed")
    assert missed.scheduled_at == session.next_due_at
    assert run.status == "running" and run.scheduled_at == late
    assert [event for event, _ in heartbeat_events()][-2:] == ["heartbeat_missed", "heartbeat_started"]
    body = services.last_heartbeat("s-1", None)
    assert body["last_run"]["run_id"] == run.run_id


def test_heartbeat_started_within_the_grace_is_not_missed(frozen_now):
    session = make_session()
    claim(session.next_due_at + timedelta(seconds=59))
    assert not HeartbeatRun.objects.filter(status="missed").exists()


# --- wakes -----------------------------------------------------------------------------------------


def test_wake_now_makes_the_heartbeat_due_immediately(frozen_now):
    session = make_session()
    assert services.request_wake("s-1", "now", "deploy finished", None) == ["s-1"]
    assert due_time(session) == frozen_now
    [run] = claim(frozen_now + timedelta(seconds=1))
    assert run.reason == "wake_now"
    assert reload(session).pending_wake == "" and due_time(session) == run.started_at + timedelta(minutes=30)
    assert WakeRequest.objects.get().consumed_at == run.started_at
    assert ("heartbeat_wake_requested", None) in heartbeat_events()


def test_wake_next_never_moves_the_heartbeat_earlier(frozen_now):
    session = make_session()
    services.request_wake("s-1", "next", "", None)
    assert due_time(session) == session.next_due_at
    assert claim(frozen_now + timedelta(minutes=29)) == []
    [run] = claim(session.next_due_at)
    assert run.reason == "wake_next"


def test_wakes_coalesce_into_one_pending_wake_and_one_run(frozen_now):
    session = make_session()
    services.request_wake("s-1", "now", "first", None)
    services.request_wake("s-1", "next", "second", None)
    services.request_wake("s-1", "now", "third", None)
    assert reload(session).pending_wake == "now" and WakeRequest.objects.count() == 3
    assert len(claim(frozen_now)) == 1
    assert claim(frozen_now + timedelta(seconds=1)) == []


def test_wake_now_outside_active_hours_is_skipped_and_its_system_events_wait_for_the_window(frozen_now):
    # Contract §3: active hours apply to wakes too. frozen_now is 12:00 UTC; the window is 14:00-18:00.
    session = make_session(every="30m", active_hours="14:00-18:00")
    event = services.add_system_event("s-1", "deploy finished", None)
    services.request_wake("s-1", "now", "deploy", None)
    assert claim(frozen_now + timedelta(minutes=10)) == []
    skipped = HeartbeatRun.objects.get()
    assert (skipped.status, skipped.reason) == ("skipped", "outside_active_hours")
    announced = LifecycleEvent.objects.get(event_type="heartbeat_skipped")
    assert announced.payload["reason"] == "outside_active_hours"
    assert SystemEvent.objects.get().delivered_run_id == ""
    assert reload(session).pending_wake == "" and WakeRequest.objects.get().consumed_at is not None
    opens = frozen_now.replace(hour=14)
    assert due_time(session) == opens
    [run] = claim(opens)
    assert [e["id"] for e in heartbeat_runs.build_heartbeat_request(run)[1]["system_events"]] == [event.id]


def test_wake_without_a_session_wakes_every_enabled_session_the_caller_sees(frozen_now):
    services.upsert_session("a", {}, "alice")
    services.upsert_session("b", {"enabled": False}, "alice")
    services.upsert_session("c", {}, "bob")
    assert services.request_wake(None, "now", "", "alice") == ["a"]
    assert sorted(services.request_wake(None, "next", "", None)) == ["a", "c"]


def test_bad_wake_requests_raise_naming_the_field_and_write_nothing(frozen_now):
    make_session()
    with pytest.raises(InvalidInput) as caught:
        services.request_wake("s-1", "later", "", None)
    assert caught.value.field == "mode"
    with pytest.raises(NotFound):
        services.request_wake("nope", "now", "", None)
    assert not WakeRequest.objects.exists()


# --- system events and replies ---------------------------------------------------------------------


def test_system_events_are_delivered_once_with_the_next_heartbeat(frozen_now):
    session = make_session()
    first = services.add_system_event("s-1", "job A finished", None)
    second = services.add_system_event("s-1", "job B failed", None)
    [run] = claim(session.next_due_at)
    late = services.add_system_event("s-1", "arrived mid-run", None)
    target, body, timeout = heartbeat_runs.build_heartbeat_request(run)
    assert target == {"type": "handler", "name": "echo"} and timeout > 0
    assert body["kind"] == "heartbeat" and "HEARTBEAT_OK" in body["command"]
    assert [event["id"] for event in body["system_events"]] == [first.id, second.id]
    heartbeat_runs.finish_heartbeat(run.run_id, "success", "HEARTBEAT_OK", "", session.next_due_at)
    delivered = SystemEvent.objects.filter(delivered_run_id=run.run_id, delivered_at__isnull=False)
    assert set(delivered.values_list("id", flat=True)) == {first.id, second.id}
    [next_run] = claim(due_time(session))
    assert [e["id"] for e in heartbeat_runs.build_heartbeat_request(next_run)[1]["system_events"]] == [
        late.id
    ]


def test_system_events_of_a_failed_heartbeat_go_with_the_next_one(frozen_now):
    session = make_session()
    event = services.add_system_event("s-1", "job A finished", None)
    [run] = claim(session.next_due_at)
    heartbeat_runs.finish_heartbeat(run.run_id, "error", "", "connection refused", session.next_due_at)
    assert SystemEvent.objects.get().delivered_at is None
    [retry] = claim(due_time(session))
    assert [e["id"] for e in heartbeat_runs.build_heartbeat_request(retry)[1]["system_events"]] == [event.id]


def test_ok_only_reply_is_suppressed_by_default(frozen_now):
    session = make_session()
    [run] = claim(session.next_due_at)
    finished = heartbeat_runs.finish_heartbeat(
        run.run_id, "success", "HEARTBEAT_OK all quiet", "", clock.now()
    )
    assert finished.ok_only and finished.status == "success"
    summary = reload(session).last_summary
    assert summary["ok_only"] is True and summary["sent"] is False
    assert summary["suppressed_reason"] == "ok_suppressed" and summary["run_id"] == run.run_id


def test_the_same_alert_is_sent_once_per_dedupe_window(frozen_now):
    session = make_session(visibility={"dedupe_window_seconds": 3600})

    def beat(at, reply):
        [run] = claim(at)
        heartbeat_runs.finish_heartbeat(run.run_id, "success", reply, "", at)
        return reload(session).last_summary

    due = session.next_due_at
    assert beat(due, "Disk 91% full")["sent"] is True
    assert beat(due + timedelta(minutes=30), "Disk  91% full\n")["suppressed_reason"] == "dedupe"
    assert beat(due + timedelta(minutes=60), "Disk 91% full")["sent"] is True  # window over
    assert beat(due + timedelta(minutes=90), "Disk 95% full")["sent"] is True  # a different alert


def test_failed_heartbeat_is_an_alert_in_the_summary(frozen_now):
    session = make_session(delivery={"mode": "none"})
    [run] = claim(session.next_due_at)
    heartbeat_runs.finish_heartbeat(run.run_id, "error", "", "timed out", clock.now())
    summary = reload(session).last_summary
    assert summary["ok_only"] is False and summary["text"] == "timed out"
    assert summary["suppressed_reason"] == "delivery_none"


# --- the run lifecycle -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "terminal"), [("success", "heartbeat_completed"), ("error", "heartbeat_failed")]
)
def test_each_run_emits_one_started_then_one_terminal_event_with_its_run_id(frozen_now, status, terminal):
    session = make_session()
    [run] = claim(session.next_due_at)
    heartbeat_runs.finish_heartbeat(run.run_id, status, "HEARTBEAT_OK", "boom", session.next_due_at)
    heartbeat_runs.finish_heartbeat(run.run_id, status, "again", "", session.next_due_at)  # a late duplicate
    run_events = [event for event in heartbeat_events() if event[1] == run.run_id]
    assert run_events == [("heartbeat_started", run.run_id), (terminal, run.run_id)]


def test_expired_lease_fails_the_run_and_a_late_finish_is_a_no_op(frozen_now):
    session = make_session()
    [run] = claim(session.next_due_at)
    services.add_system_event("s-1", "queued", None)
    assert heartbeat_runs.expire_heartbeat_leases(run.lease_expires_at) == 0  # not yet past it
    assert heartbeat_runs.expire_heartbeat_leases(run.lease_expires_at + timedelta(seconds=1)) == 1
    lost = HeartbeatRun.objects.get(run_id=run.run_id)
    assert lost.status == "error" and lost.error == "scheduler lost"
    assert (
        heartbeat_runs.finish_heartbeat(run.run_id, "success", "HEARTBEAT_OK", "", clock.now()).status
        == "error"
    )
    assert [event for event, ref in heartbeat_events() if ref == run.run_id] == [
        "heartbeat_started",
        "heartbeat_failed",
    ]


def test_last_heartbeat_reports_run_summary_and_busy(frozen_now):
    session = make_session()
    assert services.last_heartbeat("s-1", None)["last_run"] is None
    [run] = claim(session.next_due_at)
    heartbeat_runs.finish_heartbeat(run.run_id, "success", "Disk full", "", session.next_due_at)
    body = services.last_heartbeat("s-1", None)
    assert body["session_id"] == "s-1" and body["busy"] is False
    assert body["last_run"]["run_id"] == run.run_id and body["last_run"]["status"] == "success"
    assert body["last_summary"]["text"] == "Disk full"


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_schedulers_never_start_one_heartbeat_twice(frozen_now):
    for number in range(30):
        make_session(f"s-{number}", every="1m")
    due = frozen_now + timedelta(minutes=1)

    def scheduler(worker: str) -> list[str]:
        runs = heartbeat_runs.claim_due_heartbeats(due, worker, 30, limit=12)
        return [run.session_id for run in runs]

    # run_together re-raises a worker's error: a crashed scheduler must fail the test, not shrink `claimed`.
    started = run_together(*(lambda n=n: scheduler(f"w{n}") for n in range(3)))
    claimed = [session_id for batch in started for session_id in batch]
    assert len(claimed) == len(set(claimed)) == HeartbeatRun.objects.filter(status="running").count()
    assert len(claimed) == 30 or claim(due) != []  # whatever was left is still due, never lost
