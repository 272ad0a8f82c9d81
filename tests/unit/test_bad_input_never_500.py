"""Bad input gets a clear 4xx with a JSON error naming the field, never a 500 and never a partial write
(contract preamble), on every /api/v1 endpoint. Known bugs are strict xfails listed in KNOWN_BUGS, so
fixing one turns its cases red until its entry is removed."""

from __future__ import annotations

import json
import traceback

import pytest
from django.apps import apps
from django.conf import settings
from rest_framework.test import APIClient

from scheduling import clock
from scheduling.models import CronJob, CronRun
from tests.conftest import OPERATOR_TOKEN, job_payload

pytestmark = pytest.mark.django_db

API, JSON = "/api/v1", "application/json"
NUL, SURROGATE, LONG, HUGE = "a\u0000b", "a\ud800b", "x" * 60_000, 10**30
NON_STRINGS, NON_BOOLS = [[], {}, 7, True], ["true", 1, 0, [], {}]
WIDE_CRON = f"{','.join(map(str, range(60)))} {','.join(map(str, range(24)))} * * *"  # valid, 237 chars
INF, NAN = float("inf"), float("nan")  # sent as 1e400 (valid JSON, read as inf) and NaN (refused: no field)


def case(*values: object, id: str) -> object:  # noqa: A002 - pytest.param's own keyword
    known = [why for part, why in KNOWN_BUGS if part in id]
    return pytest.param(*values, id=id, marks=[pytest.mark.xfail(reason=w, strict=True) for w in known[:1]])


def encode(body: object) -> str:
    return json.dumps(body).replace("Infinity", "1e400")  # no case has the word in a string


def label(value: object) -> str:
    text = (value if isinstance(value, str) else encode(value)).replace("\x00", "\\0")
    return f"{text[:28]}...{text[-28:]}" if len(text) > 60 else text


# fmt: off
# (substring of the case id, reason). Strict: a fix makes its cases XPASS, i.e. fail, until removed here.
KNOWN_BUGS: list[tuple[str, str]] = []  # none known; add (id substring, reason) to mark one
TARGETS = [
    [], "echo", 7, {"type": "bogus"}, {"type": "handler", "name": []}, {"type": "handler", "name": "nope"},
    {"type": "webhook", "url": 7}, {"type": "webhook", "url": "ftp://x.test"},
    {"type": "webhook", "url": "http://a\u0000b.test"}, {"type": "webhook", "url": "http://x", "secret": 7},
    {"type": "webhook", "url": "http://x", "headers": {"a": 1}},
    {"type": "webhook", "url": "http://x", "headers": {"X-A": "a\r\nX-Injected: 1"}},
]
JOB_CASES = {
    "command": [None, "", "   ", *NON_STRINGS, NUL, SURROGATE],
    **{name: [*NON_STRINGS, LONG, NUL] for name in ("title", "session_id", "channel", "model", "user_id")},
    **{name: ["bogus", "📅", NUL, *NON_STRINGS] for name in ("priority", "wake_heartbeat", "missed_policy")},
    "overlap": ["bogus", "📅", NUL, *NON_STRINGS],
    **{name: NON_BOOLS for name in ("enabled", "delete_after_run")},
    "timeout_seconds": ["600", 1.5, 0, -1, HUGE, True, [], INF, -INF, NAN],
    "timezone": [*NON_STRINGS, "Mars/Olympus", "../../etc/passwd", "📅", LONG, NUL],
    "every": [[], {}, True, 0, -60, 1.5, HUGE, "abc", "30s", "📅", LONG, NUL, INF, -INF, NAN],
    "cron_expr": [*NON_STRINGS, "61 * * * *", "*/0 * * * *", "0 0 31 2 *", "📅 * * * *", LONG, NUL, WIDE_CRON,
                  "* * * * * *"],
    "run_at": [[], {}, True, HUGE, -HUGE, -1, "yesterday 3am", "📅", LONG, NUL, INF,
               "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"],
    "target": TARGETS,
    "metadata": [[], "x", 7, True, {"k": NUL}, {"k": SURROGATE}, {NUL: 1}],
}
UNKNOWN_JOB_FIELDS = ["timzone", "cron", "schedule", "Command", "", "📅", "x" * 300]
SESSION_CASES = {
    "every": [[], {}, True, 0, -60, 1.5, HUGE, "abc", "30s", LONG, NUL, INF],
    "active_hours": [[], {}, 7, True, "25:00-26:00", "9-5", "📅", LONG, NUL],
    "timezone": [*NON_STRINGS, "Mars/Olympus", LONG, NUL],
    "enabled": ["true", 1, [], {}],
    **{name: [*NON_STRINGS, "x" * 129, NUL] for name in ("owner_id", "channel")},
    "target": TARGETS,
    "delivery": [[], "last", {"mode": "bogus"}, {"mode": []}, {"mode": "last", "targets": "x"}, {"extra": 1},
                 {"mode": "explicit", "targets": [7]}, {"mode": "explicit", "targets": [NUL]},
                 {"mode": "explicit", "targets": [{"to": NUL}]}, {"mode": "explicit", "targets": ["x"] * 51}],
    "visibility": [[], "x", {"show_ok": "yes"}, {"show_ok": None}, {"bogus": 1},
                   *[{"dedupe_window_seconds": v} for v in (-1, HUGE, 1.5, INF)]],
    "session_id": ["other", 7, [], {}],
}
BUSY, WAKE, EVENT = "/heartbeat/sessions/{session}/busy", "/heartbeat/wake", "/system/event"
DONE = "/cron/runs/{run}/complete"
BODY_CASES = [
    *[(BUSY, {"busy": v}, "busy") for v in [*NON_BOOLS, None]],
    *[(WAKE, {"mode": v}, "mode") for v in [None, 1, [], {}, "later", "NOW", NUL]],
    *[(WAKE, {"mode": "now", "reason": v}, "reason") for v in [7, [], {}, "x" * 201, NUL]],
    *[(WAKE, {"mode": "now", "session_id": v}, "session_id") for v in [7, [], True, "nope", "x" * 999, NUL]],
    *[(EVENT, {"session_id": v, "text": "hi"}, "session_id") for v in [None, 7, [], "", "nope", NUL]],
    *[(EVENT, {"session_id": "s-1", "text": v}, "text") for v in [None, 7, [], {}, "", " ", "x" * 8001, NUL]],
    *[(DONE, {"status": v}, "status") for v in [None, 7, [], "queued", "SUCCESS", NUL]],
    *[(DONE, {"status": "success", "output": v}, "output") for v in [7, {"a": 1}, True, [], 0, False, NUL]],
    *[(DONE, {"status": "error", "error": v}, "error") for v in [7, [], 0, NUL, SURROGATE]],
]
WRITES = ["POST /cron/jobs", "PUT /cron/jobs/{job}", "PATCH /cron/jobs/{job}", f"POST {BUSY}", f"POST {WAKE}",
          "PUT /heartbeat/sessions/{session}", f"POST {EVENT}", f"POST {DONE}",
          *(f"POST /ops/calendar/events/cron|{{job}}|1780318800/{tail}"
            for tail in ("action", "change-request", "change-request/confirm"))]
MALFORMED = {
    "truncated": '{"a": ', "array": "[]", "string": '"x"', "number": "4", "null": "null", "bool": "true",
    "NaN": '{"a": NaN}', "Infinity": '{"a": Infinity}', "two-objects": '{"a": 1}{"b": 2}',
    "invalid-utf8": b'{"a": "\xff\xfe"}', "5000-digits": '{"a": ' + "1" * 5000 + "}",
    "deeply-nested": "[" * 30_000 + "]" * 30_000, "text/plain": ('{"a": 1}', "text/plain"),
    "form": ("a=1", "application/x-www-form-urlencoded"), "multipart": ("--", "multipart/form-data"),
    "utf-16": ('{"a": 1}', JSON + "; charset=utf-16"), "rot13": ("{}", JSON + "; charset=rot13"),
}
NOT_INTS = ("abc", "1.5", "NaN", "1e3", "%00", "%F0%9F%93%85", "9" * 5000)
QUERY_CASES = [
    *[(f"{p}?limit={v}", "limit") for v in NOT_INTS for p in ("/cron/runs", "/cron/jobs/{job}/runs")],
    *[(f"{p}?limit={v}", "limit") for v in NOT_INTS[:2] for p in ("/ops/notifications", "/system/events")],
    *[(f"/ops/scheduling/events?{p}={v}", p) for v in NOT_INTS for p in ("since_seq", "limit")],
    *[(f"/ops/scheduling/events?since_seq={v}", "since_seq") for v in ("-5", HUGE)],  # 410 reset_required
    *[(f"/ops/{p}?status={v}", "status") for p in ("notifications", "stasis") for v in ("bogus", "%00")],
    *[(f"/heartbeat/last?session_id={v}", "session_id") for v in ("", "nope", "%00", "x" * 5000)],
    *[(f"/system/events?session_id={v}", "session_id") for v in ("nope", "%00", "x" * 5000)],
    ("/heartbeat/last", "session_id"), ("/cron/jobs/nope/runs", "job_id"),
]
ODD_IDS = ["nope-📅", "x" * 2000, "a%00b", "%F0%28%8C%28", "'%20OR%201=1--", "%E2%80%AE"]
ID_ROUTES = {  # a NUL anywhere in the URL is refused before routing, naming "path"
    "GET /cron/jobs/{}": "job_id", "PATCH /cron/jobs/{}": "job_id", "PUT /cron/jobs/{}": "job_id",
    "DELETE /cron/jobs/{}": "job_id", "POST /cron/jobs/{}/run": "job_id", "GET /cron/jobs/{}/runs": "job_id",
    "GET /cron/runs/{}": "run_id", "POST /cron/runs/{}/complete": "run_id",
    "GET /heartbeat/sessions/{}": "session_id", "DELETE /heartbeat/sessions/{}": "session_id",
    "POST /heartbeat/sessions/{}/busy": "session_id", "POST /ops/calendar/events/{}/action": "event_id",
    "POST /ops/calendar/events/{}/change-request": "event_id",
    "POST /ops/calendar/events/{}/change-request/confirm": "event_id",
}
BODIES = {"PATCH": {"title": "t"}, "PUT": job_payload(), "POST": {"status": "error", "busy": True}}
PATH_CASES = [
    *[(r.format(i), BODIES.get(r.split()[0]), (f, "path")) for r, f in ID_ROUTES.items() for i in ODD_IDS],
    *[(f"PUT /heartbeat/sessions/{i}", {}, ("session_id", "path")) for i in ("a%00b", "%20%20", "x" * 129)],
    *[(route, None, None) for route in ("POST /cron/runs", f"DELETE {WAKE}", "PUT /ops/stasis")],
]
METHODS, SIDS = ("POST", "PUT", "PATCH"), ("s-new", "s-1")
CLAMPED = [f"/cron/runs?limit={HUGE}", "/cron/runs?limit=-5", "/ops/notifications?limit=-5",
           f"/ops/scheduling/events?since_seq=0&limit={HUGE}", f"/system/events?limit={HUGE}",
           "/cron/jobs?limit=abc&%F0%9F%93%85=1", "/heartbeat/sessions?x=" + "y" * 5000]
JOB_PARAMS = [case(m, f, v, id=f"{m} {f}={label(v)}") for f, vs in JOB_CASES.items() for v in vs
              for m in METHODS]
BULK_PARAMS = [case(f, v, id=f"bulk {f}={label(v)}") for f, vs in JOB_CASES.items() for v in vs]
BULK_SHAPES = {"empty": ([], None), "1001 items": ([job_payload()] * 1001, None),
               "a string item": ([job_payload(), "x"], "1"), "a null item": ([None], "0"),
               "a nested array": ([[job_payload()]], "0"),
               "misspelt": ([job_payload(), {"timzone": 1}], "1.timzone"),
               "item over 64 KiB": ([job_payload(), job_payload(command="x" * 70_000)], "1")}
UNKNOWN_PARAMS = [case(m, f, id=f"{m} {label(f)}") for f in UNKNOWN_JOB_FIELDS for m in METHODS]
SESSION_PARAMS = [case(s, f, v, id=f"{s} {f}={label(v)}") for f, vs in SESSION_CASES.items() for v in vs
                  for s in SIDS]
BODY_PARAMS = [case(*c, id=f"{c[0]} {label(c[1])}") for c in BODY_CASES]
# fmt: on


@pytest.fixture
def client(db: None) -> APIClient:
    client = APIClient(raise_request_exception=False)  # a server error comes back as a 500 response
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {OPERATOR_TOKEN}")
    return client


@pytest.fixture
def world(operator: APIClient) -> dict[str, str]:
    """An existing job, heartbeat session and running run for the hostile requests to aim at."""
    job_id = operator.post(f"{API}/cron/jobs", job_payload(), format="json").json()["job"]["job_id"]
    operator.put(f"{API}/heartbeat/sessions/s-1", {"every": "1h"}, format="json")
    run = CronRun.for_job(CronJob.objects.get(job_id=job_id), reason="manual")
    run.status, run.started_at = "running", clock.now()
    run.save(force_insert=True)
    return {"job": job_id, "session": "s-1", "run": run.run_id}


def db_state() -> dict[str, list[str]]:
    """Every row of the event log and the domain tables (contents, so updates count as writes too)."""
    configs = [apps.get_app_config(app) for app in ("scheduling", "calendar_projection", "ops_api")]
    models = [model for config in configs for model in config.get_models()]
    return {m._meta.db_table: sorted(map(repr, m.objects.values_list())) for m in models}


def root_cause(response: object) -> str:
    if not (exc := getattr(response, "exc_info", None)):
        return ""
    frames, base = traceback.extract_tb(exc[2]), f"{settings.BASE_DIR}/"
    at = ([f for f in frames if f.filename.startswith(base) and "/.venv/" not in f.filename] or frames)[-1]
    return f"{exc[0].__name__}: {str(exc[1])[:200]} at {at.filename.removeprefix(base)}:{at.lineno}"


def assert_rejected(client: APIClient, route: str, body: object, field: object) -> None:
    """A 4xx JSON error naming `field` (a name or a tuple of acceptable names), and no write at all."""
    method, url = route.split(" ", 1)
    before = db_state()
    if isinstance(body, tuple | bytes | str):
        data, content_type = body if isinstance(body, tuple) else (body, JSON)  # sent verbatim
        response = client.generic(method, API + url, data, content_type=content_type)
    else:
        response = client.generic(method, API + url, "" if body is None else encode(body), content_type=JSON)
    shown = f"{response.status_code} {response.content[:300]!r} {root_cause(response)}"
    assert 400 <= response.status_code < 500, shown
    assert response["Content-Type"].startswith(JSON), shown
    assert isinstance(payload := response.json(), dict) and payload.get("error"), shown
    if field:  # "target.url" or "delivery.targets[0]" name "target" and "delivery" too
        names, got = field if isinstance(field, tuple) else (field,), str(payload.get("field"))
        assert got in names or got.startswith(tuple(f"{n}{sep}" for n in names for sep in ".[")), shown
    assert db_state() == before, "a rejected request changed the database"


@pytest.mark.parametrize(("method", "field", "value"), JOB_PARAMS)
def test_a_cron_job_field_of_the_wrong_shape_is_a_4xx_naming_it_that_writes_nothing(
    client, world, method, field, value
):
    body = {field: value} if method == "PATCH" else {**job_payload(), field: value}
    route = f"{method} /cron/jobs" + ("" if method == "POST" else f"/{world['job']}")
    assert_rejected(client, route, body, None if value is NAN else field)


@pytest.mark.parametrize(("method", "field"), UNKNOWN_PARAMS)
def test_an_unknown_cron_job_field_is_a_4xx_naming_it_that_writes_nothing(client, world, method, field):
    body = {**job_payload(), field: "Europe/Berlin"}
    route = f"{method} /cron/jobs" + ("" if method == "POST" else f"/{world['job']}")
    assert_rejected(client, route, body, field[:200])


@pytest.mark.parametrize(("field", "value"), BULK_PARAMS)
def test_a_bad_item_in_a_bulk_create_is_a_4xx_naming_index_and_field_that_writes_nothing(
    client, field, value
):
    items = [job_payload(), job_payload(), {**job_payload(), field: value}]
    assert_rejected(client, "POST /cron/jobs", items, None if value is NAN else f"2.{field}")


@pytest.mark.parametrize(("items", "field"), list(BULK_SHAPES.values()), ids=list(BULK_SHAPES))
def test_a_bulk_create_of_the_wrong_shape_is_a_4xx_that_writes_nothing(client, world, items, field):
    assert_rejected(client, "POST /cron/jobs", items, field)


@pytest.mark.parametrize(("sid", "field", "value"), SESSION_PARAMS)
def test_a_heartbeat_session_field_of_the_wrong_shape_is_a_4xx_naming_it_that_writes_nothing(
    client, world, sid, field, value
):
    route = f"PUT /heartbeat/sessions/{sid}"  # one to create, one to update
    assert_rejected(client, route, {field: value}, None if value is NAN else field)


@pytest.mark.parametrize(("path", "body", "field"), BODY_PARAMS)
def test_a_bad_busy_wake_system_event_or_completion_body_is_a_4xx_naming_the_field(
    client, world, path, body, field
):
    assert_rejected(client, "POST " + path.format(**world), body, field)


@pytest.mark.parametrize(
    ("route", "body"), [case(r, raw, id=f"{r} {name}") for r in WRITES for name, raw in MALFORMED.items()]
)
def test_a_body_that_is_not_a_json_object_is_a_4xx_that_writes_nothing(client, world, route, body):
    assert_rejected(client, route.format(**world), body, None)


@pytest.mark.parametrize(("url", "field"), [case(url, field, id=label(url)) for url, field in QUERY_CASES])
def test_a_bad_query_parameter_is_a_4xx_naming_it(client, world, url, field):
    assert_rejected(client, "GET " + url.format(**world), None, field)


@pytest.mark.parametrize(("route", "body", "field"), [case(*c, id=label(c[0])) for c in PATH_CASES])
def test_an_odd_path_id_or_an_unsupported_method_is_a_4xx_never_a_500(client, world, route, body, field):
    assert_rejected(client, route, body, field)


@pytest.mark.parametrize("url", CLAMPED)
def test_a_huge_negative_or_unknown_query_parameter_is_clamped_or_ignored(client, world, url):
    before = db_state()
    response = client.get(API + url)
    assert response.status_code == 200, (response.content[:300], root_cause(response))
    assert db_state() == before


def test_unicode_and_emoji_are_stored_and_returned_intact(client):
    text, sid = "📅 Übersicht — 日本語 \u202e rtl", "s-📅-ü"
    job = client.post(f"{API}/cron/jobs", job_payload(title=text, command=text), format="json")
    assert job.status_code == 201, root_cause(job)
    assert client.get(f"{API}/cron/jobs/{job.json()['job']['job_id']}").json()["job"]["title"] == text
    session = client.put(f"{API}/heartbeat/sessions/{sid}", {"channel": text}, format="json")
    assert session.status_code == 200 and session.json()["session"]["session_id"] == sid, root_cause(session)
    event = client.post(f"{API}/system/event", {"session_id": sid, "text": text}, format="json")
    assert event.status_code == 201 and event.json()["event"]["text"] == text, root_cause(event)
