"""The soak's correctness checks, fed event pages directly: they must catch what they claim to."""

from __future__ import annotations

from ops_api.soak import Invariants, percentile


def event(seq, event_type="cron_job_updated", run_id=None):
    return {"seq": seq, "event_type": event_type, "payload": {"run_id": run_id} if run_id else {}}


def test_a_gapless_ascending_tail_with_one_start_and_one_end_per_run_passes():
    checks = Invariants()
    page = [event(1), event(2, "cron_run_started", "r1"), event(3, "cron_run_completed", "r1")]
    assert checks.see_events(page) == []
    assert checks.see_events([event(4, "cron_run_missed", "r2")]) == []


def test_a_gap_or_a_step_back_in_seq_is_a_failure():
    checks = Invariants()
    checks.see_events([event(1), event(2)])
    assert "not gapless" in checks.see_events([event(4)])[0]
    assert "not gapless" in checks.see_events([event(3)])[0]


def test_a_second_started_or_terminal_event_of_one_run_is_a_failure():
    checks = Invariants()
    assert checks.see_events([event(1, "cron_run_started", "r1"), event(2, "cron_run_started", "r1")])
    checks = Invariants()
    page = [
        event(1, "cron_run_started", "r1"),
        event(2, "cron_run_failed", "r1"),
        event(3, "cron_run_completed", "r1"),
    ]
    assert "2 terminal events" in checks.see_events(page)[0]


def test_a_start_after_the_terminal_event_is_a_failure():
    checks = Invariants()
    assert checks.see_events([event(1, "heartbeat_completed", "h1"), event(2, "heartbeat_started", "h1")])


def test_the_projection_version_may_stay_or_grow_but_never_decrease():
    checks = Invariants()
    assert checks.see_version(3, "calendar") == []
    assert checks.see_version(3, "replay") == []
    assert checks.see_version(None, "replay") == []
    assert "went back" in checks.see_version(2, "stream")[0]


def test_percentiles_are_nearest_rank():
    samples = [float(n) for n in range(1, 101)]
    assert (percentile(samples, 0.5), percentile(samples, 0.99), percentile([], 0.5)) == (50.0, 99.0, 0.0)


def test_a_projector_that_stays_behind_for_three_cycles_fails_the_soak():
    from ops_api.soak import Soak

    soak = Soak(client=None, timeout=1, max_projection_lag=100)
    page = {"event_bus_seq": 500, "projection_last_event_seq": 10}
    for _ in range(2):
        soak._check_projection_lag(page)
    assert soak.checks["projection_keeps_up"]["fail"] == 0
    soak._check_projection_lag(page)
    assert soak.checks["projection_keeps_up"]["fail"] == 1
    soak._check_projection_lag({"event_bus_seq": 500, "projection_last_event_seq": 450})
    assert soak.lagging_cycles == 0
