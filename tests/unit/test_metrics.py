"""Runtime metrics (contract §8): buffered per process, merged into the table in batches, summed across
processes, surviving restarts; the JSON document and the Prometheus text built from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from prometheus_client.parser import text_string_to_metric_families

from calendar_projection.models import ProjectionState
from scheduling import clock, metrics
from scheduling.event_log import EventDraft, append_event
from scheduling.metrics import Recorder
from scheduling.metrics_report import COUNTERS, read_report
from scheduling.models import RuntimeMetric
from scheduling.services import claims
from tests.conftest import OPERATOR_TOKEN, job_payload

pytestmark = pytest.mark.django_db
API = "/api/v1"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_counters_samples_and_gauges_sum_across_processes_and_survive_a_restart():
    first, second = Recorder("host-a:1"), Recorder("host-b:2")
    first.count("push_stream_connects", 3)
    second.count("push_stream_connects", 4)
    with clock.frozen(T0):
        first.observe("due_lag_seconds", 0.2)
        first.set_gauge("push_clients", 5)
    with clock.frozen(T0 + timedelta(seconds=1)):
        second.observe("due_lag_seconds", 0.05)
        second.set_gauge("push_clients", 7)
    with clock.frozen(T0 + timedelta(seconds=2)):
        second.flush()
        first.flush()  # flushed last, but its sample is older: `last` stays the newer one
        report = read_report()
    assert report.value("push_stream_connects") == 7
    lag = report.projection()
    assert (lag["due_lag_samples"], lag["due_lag_seconds_last"], lag["due_lag_seconds_max"]) == (2, 0.05, 0.2)
    assert lag["due_lag_seconds_total"] == pytest.approx(0.25)
    assert report.gauges["push_clients"] == 12
    restarted = Recorder("host-a:3")  # a new process after a restart adds to what was stored
    restarted.count("push_stream_connects")
    restarted.flush()
    assert read_report().counters()["push_stream_connects"] == 8


def test_counting_writes_nothing_until_a_flush_which_writes_one_row_per_name(django_assert_max_num_queries):
    recorder = Recorder("host-a:1")
    for _ in range(1000):
        recorder.count("calendar_events_requests")
        recorder.count("push_replay_requests", 2)
    assert not RuntimeMetric.objects.exists()
    with django_assert_max_num_queries(4):  # one UPSERT per kind of value, plus the savepoint
        assert recorder.flush() == 2
    assert dict(RuntimeMetric.objects.values_list("name", "value")) == {
        "calendar_events_requests": 1000,
        "push_replay_requests": 2000,
    }
    assert recorder.flush() == 0


def test_a_failed_flush_keeps_the_values_for_the_next_one(monkeypatch):
    recorder = Recorder("host-a:1")
    recorder.count("heartbeat_wake_requests", 2)
    recorder.observe("due_lag_seconds", 1.5)

    def database_down(*args):
        raise RuntimeError("database down")

    monkeypatch.setattr(metrics, "_write", database_down)
    with pytest.raises(RuntimeError):
        recorder.flush()
    recorder.count("heartbeat_wake_requests")
    monkeypatch.undo()
    recorder.flush()
    report = read_report()
    assert report.value("heartbeat_wake_requests") == 3 and report.value("due_lag_seconds.samples") == 1


def test_a_stale_gauge_of_a_dead_process_is_not_summed():
    with clock.frozen(T0):
        dead = Recorder("dead:1")
        dead.set_gauge("push_clients", 40)
        dead.flush()
    with clock.frozen(T0 + timedelta(minutes=5)):
        alive = Recorder("alive:2")
        alive.set_gauge("push_clients", 2)
        alive.flush()
        assert read_report().gauges == {"push_clients": 2}


def test_committed_events_are_counted_by_source_and_type_and_rolled_back_ones_never(
    operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        operator.post(f"{API}/cron/jobs", job_payload(), format="json")
        operator.put(f"{API}/heartbeat/sessions/s-1", {"every": "1h"}, format="json")
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        append_event(EventDraft(event_type="cron_job_updated", source="cron", source_ref="job_x"))
        raise RuntimeError("rolled back")
    metrics.flush()
    report = read_report()
    assert report.nested("event_counts.") == {
        "cron": {"cron_job_created": 1},
        "heartbeat": {"heartbeat_scheduled": 1},
    }
    counters = report.counters()
    assert (counters["event_emissions_total"], counters["cron_events_total"]) == (2, 1)
    assert counters["heartbeat_events_total"] == 1


def test_a_scheduled_run_records_its_due_lag_and_its_outcome(operator, django_capture_on_commit_callbacks):
    with clock.frozen(T0):
        job_id = operator.post(f"{API}/cron/jobs", job_payload(), format="json").json()["job"]["job_id"]
    start = T0 + timedelta(hours=1, seconds=2)
    with clock.frozen(start), django_capture_on_commit_callbacks(execute=True):
        [started], _ = claims.claim_due_occurrences(start, "scheduler:test", 10)
        operator.post(f"{API}/cron/runs/{started.run_id}/complete", {"status": "success"}, format="json")
        operator.post(f"{API}/cron/jobs/{job_id}/run")  # manual runs have no due lag
    metrics.flush()
    report = read_report()
    assert report.projection()["due_lag_seconds_last"] == 2.0
    histogram = dict(report.histogram("due_lag_seconds").buckets)
    assert (histogram[1.0], histogram[2.5], histogram[60.0]) == (0, 1, 1)
    assert report.nested("run_outcomes.") == {"cron": {"success": 1}}


def test_the_metrics_document_has_the_contract_keys_and_counts_requests(operator, alice, client):
    operator.put(f"{API}/heartbeat/sessions/s-1", {"every": "1h"}, format="json")
    operator.get(f"{API}/heartbeat/last?session_id=s-1")
    operator.post(f"{API}/heartbeat/wake", {"mode": "next", "session_id": "s-1"}, format="json")
    operator.get(f"{API}/ops/scheduling/events?since_seq=0")
    response = operator.get(f"{API}/ops/metrics/scheduling-runtime")
    assert response.status_code == 200
    body = response.json()["metrics"]
    assert {"started_at", "uptime_seconds", "counters", "event_counts", "projection", "event_bus",
            "projection_state"} <= set(body)  # fmt: skip
    assert set(COUNTERS) <= set(body["counters"])
    counters = body["counters"]
    assert counters["heartbeat_last_requests"] == counters["heartbeat_wake_requests"] == 1
    assert counters["push_replay_requests"] == 1
    samples = {
        "builds", *(f"duration_ms_{kind}" for kind in ("last", "max", "total", "avg")), "events_total",
        "always_running_total", "stasis_total", "due_lag_samples",
        *(f"due_lag_seconds_{kind}" for kind in ("last", "max", "total", "avg")),
    }  # fmt: skip
    assert samples <= set(body["projection"])
    assert body["event_bus"]["event_bus_seq"] == 2  # the session's creation and its wake request
    assert body["projection_state"]["lag_events"] == 2
    assert alice.get(f"{API}/ops/metrics/scheduling-runtime").status_code == 403
    assert client.get(f"{API}/ops/metrics/scheduling-runtime").status_code == 401


def test_projection_builds_are_reported_as_samples():
    metrics.record_projection_build(12.5, events=300, always_running=2, stasis=1)
    metrics.record_projection_build(7.5, events=100, always_running=0, stasis=1)
    metrics.flush()
    projection = read_report().projection()
    assert (projection["builds"], projection["duration_ms_last"], projection["duration_ms_max"]) == (
        2,
        7.5,
        12.5,
    )
    assert (projection["duration_ms_avg"], projection["events_total"], projection["stasis_total"]) == (
        10.0,
        400,
        2,
    )


def test_each_calendar_feed_request_is_a_projection_build_counting_its_events(operator):
    operator.post(f"{API}/cron/jobs", {"command": "digest", "every": "1d"}, format="json")
    feed = operator.get(f"{API}/ops/calendar/events?view=week")
    shown = len(feed.json()["events"])
    metrics.flush()
    counters = read_report()
    projection = counters.projection()
    assert shown >= 1 and (projection["builds"], projection["events_total"]) == (1, shown)
    assert counters.value("calendar_events_requests") == 1


def scrape(client, **headers):
    return client.get("/metrics", **headers)


def test_prometheus_text_parses_and_carries_lag_clients_outcomes_and_log_bounds(operator, client):
    operator.post(f"{API}/cron/jobs", job_payload(), format="json")
    ProjectionState.objects.create(name="calendar", version=1, last_event_seq=0)
    other = Recorder("server-b:9")
    other.set_gauge("push_clients", 3)
    other.observe("due_lag_seconds", 0.03)
    other.flush()
    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {OPERATOR_TOKEN}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    assert families["scheduling_due_lag_seconds"].type == "histogram"
    samples = {(s.name, s.labels.get("le")): s.value for s in families["scheduling_due_lag_seconds"].samples}
    assert samples[("scheduling_due_lag_seconds_bucket", "0.025")] == 0
    assert samples[("scheduling_due_lag_seconds_bucket", "0.05")] == 1
    assert samples[("scheduling_due_lag_seconds_count", None)] == 1
    value = {name: families[name].samples[0].value for name in families if len(families[name].samples) == 1}
    assert value["scheduling_projection_lag_events"] == 1 and value["scheduling_push_clients"] == 3
    assert value["scheduling_event_log_head_seq"] == value["scheduling_event_log_oldest_seq"] == 1
    assert "scheduling_projection_lag_seconds" in value and "scheduling_run_outcomes" in families
    assert value["scheduling_calendar_action_requests"] == 0


def test_metrics_scrapes_need_the_operator_token_unless_public(client, alice, owner_client, settings):
    from ops_api.models import OwnerApiToken

    _, owner_token = OwnerApiToken.issue("bob")
    assert scrape(client).status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(client, HTTP_X_UA_OPS_TOKEN=owner_token).status_code == 403
    assert scrape(client, HTTP_X_UA_OPS_TOKEN=OPERATOR_TOKEN).status_code == 200
    settings.UA_METRICS_PUBLIC = True
    assert scrape(client).status_code == 200
