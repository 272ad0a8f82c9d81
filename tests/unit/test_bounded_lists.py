"""Bounded work (issue 6, item 6): list endpoints page with `limit`, `offset` and `has_more`; run lists
never fetch whole outputs; a wake of every session works in batches. One body for SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduling import clock
from scheduling.models import CronRun, HeartbeatRun, Notification, RunStatus, StasisEntry, WakeRequest
from scheduling.services import heartbeats as heartbeat_services
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db

API = "/api/v1"
LONG_OUTPUT = "0123456789" * 1000


def make_jobs(count: int = 3) -> list[str]:
    ids = []
    for index in range(count):
        ids.append(job_services.create_job(job_payload(title=f"job {index}"), None).job_id)
        clock.advance(timedelta(seconds=1))
    return ids


def make_runs(job_id: str, count: int = 3) -> list[str]:
    job = job_services.get_job(job_id, None)
    ids = []
    for index in range(count):
        run = CronRun.for_job(job, reason="manual", created_at=clock.now())
        run.status, run.started_at, run.finished_at = RunStatus.SUCCESS, clock.now(), clock.now()
        run.output = f"{index}:" + LONG_OUTPUT
        run.save(force_insert=True)
        ids.append(run.run_id)
        clock.advance(timedelta(seconds=1))
    return ids


def make_sessions(count: int = 3) -> list[str]:
    return [
        heartbeat_services.upsert_session(f"s-{i}", {"every": "30m"}, None).session_id for i in range(count)
    ]


def make_system_events() -> list[int]:
    make_sessions(1)
    ids = []
    for index in range(3):
        ids.append(heartbeat_services.add_system_event("s-0", f"event {index}", None).id)
        clock.advance(timedelta(seconds=1))
    return ids[::-1]  # newest first


def make_notifications() -> list[str]:
    ids = []
    for index in range(3):
        now = clock.now()
        row = Notification.objects.create(
            kind="run_failed",
            source="cron",
            source_ref=f"job-{index}",
            title="t",
            created_at=now,
            updated_at=now,
        )
        ids.append(row.notification_id)
        clock.advance(timedelta(seconds=1))
    return ids[::-1]  # most recently updated first


def make_stasis_entries() -> list[str]:
    ids = []
    for index in range(3):
        now = clock.now()
        entry = StasisEntry(
            event_id=f"cron|job-{index}|1", source="cron", source_ref=f"job-{index}", scheduled_at=now,
            detected_at=now,
        )  # fmt: skip
        entry.save(force_insert=True)
        ids.append(entry.entry_id)
        clock.advance(timedelta(seconds=1))
    return ids[::-1]  # newest first


def listed(name: str, key: str, make):  # noqa: ANN001, ANN202 - a small table of cases
    return pytest.param(name, key, make, id=name)


LISTS = [
    listed("/cron/jobs", "job_id", make_jobs),
    listed("/cron/runs", "run_id", lambda: make_runs(make_jobs(1)[0])[::-1]),
    listed("/heartbeat/sessions", "session_id", make_sessions),
    listed("/system/events", "id", make_system_events),
    listed("/ops/notifications", "notification_id", make_notifications),
    listed("/ops/stasis", "entry_id", make_stasis_entries),
]
LIST_KEYS = {
    "/cron/jobs": "jobs",
    "/cron/runs": "runs",
    "/heartbeat/sessions": "sessions",
    "/system/events": "events",
    "/ops/notifications": "notifications",
    "/ops/stasis": "stasis_queue",
}


@pytest.mark.parametrize(("path", "key", "make"), LISTS)
def test_every_list_endpoint_pages_with_limit_offset_and_has_more(operator, frozen_now, path, key, make):
    expected = make()
    wrapper = LIST_KEYS[path]

    def page(query: str) -> tuple[list, bool]:
        response = operator.get(f"{API}{path}{query}")
        assert response.status_code == 200, response.content
        body = response.json()
        return [row[key] for row in body[wrapper]], body["has_more"]

    assert page("") == (expected, False)
    assert page("?limit=2") == (expected[:2], True)
    assert page("?limit=2&offset=2") == (expected[2:], False)
    assert page("?limit=0") == (expected[:1], True)  # clamped to 1
    assert page("?limit=99999&offset=1") == (expected[1:], False)  # clamped to 5000


def test_the_runs_of_one_job_page_newest_first(operator, frozen_now):
    job_id = make_jobs(1)[0]
    newest_first = make_runs(job_id)[::-1]
    body = operator.get(f"{API}/cron/jobs/{job_id}/runs?limit=2&offset=1").json()
    assert [run["run_id"] for run in body["runs"]] == newest_first[1:]
    assert body["has_more"] is False


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "%00"])
@pytest.mark.parametrize("path", [*LIST_KEYS, "/cron/jobs/{job}/runs"])
def test_an_offset_that_is_not_a_non_negative_integer_is_a_400_naming_it(operator, frozen_now, path, value):
    job_id = make_jobs(1)[0]
    response = operator.get(f"{API}{path.format(job=job_id)}?offset={value}")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "offset"


OUTPUT_COLUMN = re.compile(r'(SUBSTR(?:ING)?\()?"scheduling_(?:cron|heartbeat)run"\."output"')


def whole_output_reads(queries: list[dict]) -> list[str]:
    """Statements that fetch a run's output column other than through the 400-character substring."""
    return [q["sql"] for q in queries if any(not m.group(1) for m in OUTPUT_COLUMN.finditer(q["sql"]))]


def test_run_lists_and_job_last_runs_never_fetch_whole_outputs(operator, frozen_now):
    job_id = make_jobs(1)[0]
    newest = make_runs(job_id)[-1]
    for path in ("/cron/runs", f"/cron/jobs/{job_id}/runs", "/cron/jobs", f"/cron/jobs/{job_id}"):
        with CaptureQueriesContext(connection) as captured:
            body = operator.get(f"{API}{path}").json()
        assert whole_output_reads(captured.captured_queries) == [], path
        runs = body.get("runs") or [job["last_run"] for job in body.get("jobs") or [body["job"]]]
        assert all("output" not in run for run in runs)
        assert {len(run["output_preview"]) for run in runs} == {400}
    run = operator.get(f"{API}/cron/runs/{newest}").json()["run"]
    assert run["output"] == "2:" + LONG_OUTPUT and len(run["output_preview"]) == 400


def test_the_last_heartbeat_carries_an_output_preview_only(operator, frozen_now):
    make_sessions(1)
    run = HeartbeatRun(session_id="s-0", status="success", created_at=clock.now(), output=LONG_OUTPUT)
    run.save(force_insert=True)
    with CaptureQueriesContext(connection) as captured:
        body = operator.get(f"{API}/heartbeat/last?session_id=s-0").json()
    assert whole_output_reads(captured.captured_queries) == []
    assert len(body["last_run"]["output_preview"]) == 400


def test_a_wake_without_a_session_id_works_through_sessions_in_batches(operator, frozen_now, monkeypatch):
    monkeypatch.setattr(heartbeat_services, "WAKE_BATCH", 2)
    sessions = make_sessions(5)
    heartbeat_services.upsert_session("off", {"every": "30m", "enabled": False}, None)
    with CaptureQueriesContext(connection) as captured:
        response = operator.post(f"{API}/heartbeat/wake", {"mode": "now"}, format="json")
    assert response.status_code == 200 and response.json()["session_ids"] == sessions
    # One bounded SELECT (FOR UPDATE on PostgreSQL) per batch: no transaction takes every session at once.
    queries = [query["sql"] for query in captured.captured_queries]
    batches = [sql for sql in queries if re.search(r"heartbeatsession.*LIMIT 2( FOR UPDATE)?$", sql)]
    assert len(batches) == 3, batches  # 2 + 2 + 1
    assert sorted(WakeRequest.objects.values_list("session_id", flat=True)) == sessions
