"""What each `/api/v1/` operation takes and answers, for drf-spectacular.

The views stay free of schema decorators: each entry below names a view class and, per method, its
`extend_schema` arguments, and `register()` turns the table into drf-spectacular view extensions (its
supported way to annotate views from outside). Endpoints that are not DRF views (health, the SSE stream)
are added as raw path items by `add_plain_views`, a postprocessing hook.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from ops_api.openapi.schemas import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    Schema,
    array,
    enum,
    nullable,
    nullable_ref,
    obj,
    ref,
)

JSON = "application/json"
ERROR = OpenApiResponse(ref("Error"), description="JSON error naming the field where there is one")
COMMON_ERRORS = {400: ERROR, 401: ERROR, 404: ERROR, 413: ERROR, 503: ERROR}


def wrapped(name: str, schema: Schema, **extra: Schema) -> Schema:
    """Objects and lists are wrapped by name (contract preamble): {"job": {...}}."""
    return obj((name,), **{name: schema}, **extra)


def listed(name: str, item: str) -> Schema:
    return obj((name,), **{name: array(ref(item))}, has_more=BOOLEAN)


def body(schema: Schema) -> dict[str, Schema]:
    """A JSON request body (drf-spectacular reads a dict `request` as media type -> schema)."""
    return {JSON: schema}


def query(name: str, description: str, kind: type = str, enum_values: list[str] | None = None) -> Any:
    return OpenApiParameter(name, kind, OpenApiParameter.QUERY, description=description, enum=enum_values)


PAGING = [
    query("limit", "page size (default 500; outside 1..5000 clamped)", int),
    query("offset", "rows to skip (a non-integer or negative value is a 400)", int),
]
JOB = wrapped("job", ref("Job"))
RUN = wrapped("run", ref("Run"))
SESSION = wrapped("session", ref("Session"))
JOB_CREATE_BODY = {
    JSON: {
        "oneOf": [ref("JobInput"), {"type": "array", "items": ref("JobInput"), "maxItems": 1000}],
        "description": "one job, or an array of up to 1,000 created in one transaction",
    }
}
COMPLETION = obj(("status",), status=enum("success", "error"), output=STRING, error=STRING)

# view class -> method -> extend_schema arguments
OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "ops_api.views.jobs.JobCollection": {
        "get": {
            "summary": "List jobs (by created_at)",
            "parameters": PAGING,
            "responses": {200: listed("jobs", "Job"), **COMMON_ERRORS},
        },
        "post": {
            "summary": "Create a job, or up to 1,000 from a JSON array",
            "request": JOB_CREATE_BODY,
            "responses": {201: {"oneOf": [JOB, listed("jobs", "Job")]}, **COMMON_ERRORS},
        },
    },
    "ops_api.views.jobs.JobDetail": {
        "get": {"summary": "Get a job", "responses": {200: JOB, **COMMON_ERRORS}},
        "put": {
            "summary": "Update any subset of a job's fields",
            "request": body(ref("JobInput")),
            "responses": {200: JOB, **COMMON_ERRORS},
        },
        "patch": {
            "summary": "Update any subset of a job's fields",
            "request": body(ref("JobInput")),
            "responses": {200: JOB, **COMMON_ERRORS},
        },
        "delete": {
            "summary": "Delete a job and cancel its pending work",
            "responses": {
                200: obj(("status", "job_id"), status=enum("deleted"), job_id=STRING),
                **COMMON_ERRORS,
            },
        },
    },
    "ops_api.views.jobs.JobRunNow": {
        "post": {
            "summary": "Queue a manual run now",
            "request": None,
            "responses": {
                202: obj(("status", "run"), status=enum("queued"), run=ref("Run")),
                409: ERROR,
                **COMMON_ERRORS,
            },
        },
    },
    "ops_api.views.jobs.JobRuns": {
        "get": {
            "summary": "A job's runs, newest first",
            "parameters": PAGING,
            "responses": {200: listed("runs", "Run"), **COMMON_ERRORS},
        },
    },
    "ops_api.views.jobs.RunCollection": {
        "get": {
            "summary": "All runs, newest first",
            "parameters": PAGING,
            "responses": {200: listed("runs", "Run"), **COMMON_ERRORS},
        },
    },
    "ops_api.views.jobs.RunDetail": {
        "get": {"summary": "A run with its whole output", "responses": {200: RUN, **COMMON_ERRORS}},
    },
    "ops_api.views.jobs.RunComplete": {
        "post": {
            "summary": "Callback: a target that answered 202 completes its run",
            "request": body(COMPLETION),
            "responses": {200: RUN, 409: ERROR, **COMMON_ERRORS},
        },
    },
    "ops_api.views.heartbeats.SessionCollection": {
        "get": {
            "summary": "List heartbeat sessions",
            "parameters": PAGING,
            "responses": {200: listed("sessions", "Session"), **COMMON_ERRORS},
        },
        "post": {
            "summary": "Create a session (body names session_id)",
            "request": body(ref("SessionInput")),
            "responses": {201: SESSION, 409: ERROR, **COMMON_ERRORS},
        },
    },
    "ops_api.views.heartbeats.SessionDetail": {
        "get": {"summary": "Get a session", "responses": {200: SESSION, **COMMON_ERRORS}},
        "put": {
            "summary": "Create or configure a session",
            "request": body(ref("SessionInput")),
            "responses": {200: SESSION, 201: SESSION, **COMMON_ERRORS},
        },
        "delete": {
            "summary": "Delete a session",
            "responses": {200: obj(status=enum("deleted"), session_id=STRING), **COMMON_ERRORS},
        },
    },
    "ops_api.views.heartbeats.SessionBusy": {
        "post": {
            "summary": "Mark a session busy or free",
            "request": body(obj(("busy",), busy=BOOLEAN)),
            "responses": {200: SESSION, **COMMON_ERRORS},
        },
    },
    "ops_api.views.heartbeats.Wake": {
        "post": {
            "summary": "Request a heartbeat now or at the next due time",
            "request": body(obj(("mode",), session_id=STRING, mode=enum("now", "next"), reason=STRING)),
            "responses": {
                200: obj(("status",), status=enum("queued"), mode=STRING, session_ids=array(STRING)),
                **COMMON_ERRORS,
            },
        },
    },
    "ops_api.views.heartbeats.LastHeartbeat": {
        "get": {
            "summary": "A session's last heartbeat and summary",
            "parameters": [query("session_id", "the session", str)],
            "responses": {
                200: obj(
                    ("session_id",),
                    session_id=STRING,
                    last_run=nullable_ref("HeartbeatRun"),
                    last_summary=nullable(OBJECT),
                    busy=BOOLEAN,
                ),
                **COMMON_ERRORS,
            },
        },
    },
    "ops_api.views.heartbeats.SystemEventCreate": {
        "post": {
            "summary": "Queue a system event for a session's next heartbeat",
            "request": body(
                obj(
                    session_id=STRING,
                    text=STRING,
                    event_type=STRING,
                    payload=OBJECT,
                    wake_heartbeat=BOOLEAN,
                    wake_mode=enum("now", "next"),
                )
            ),
            "responses": {201: wrapped("event", ref("SystemEvent")), **COMMON_ERRORS},
        },
    },
    "ops_api.views.heartbeats.SystemEventCollection": {
        "get": {
            "summary": "System events",
            "parameters": [query("session_id", "filter", str), *PAGING],
            "responses": {200: listed("events", "SystemEvent"), **COMMON_ERRORS},
        },
    },
    "ops_api.views.events.EventReplay": {
        "get": {
            "summary": "Replay the lifecycle event log by seq",
            "parameters": [
                query("since_seq", "read events with seq > since_seq", int),
                query("limit", "page size (1..5000)", int),
            ],
            "responses": {
                200: obj(
                    ("events", "has_more", "next_since_seq", "event_bus_seq"),
                    events=array(ref("LifecycleEvent")),
                    has_more=BOOLEAN,
                    next_since_seq=INTEGER,
                    event_bus_seq=INTEGER,
                    oldest_seq=INTEGER,
                    projection_version=INTEGER,
                    projection_last_event_seq=INTEGER,
                ),
                410: ERROR,
                **COMMON_ERRORS,
            },
        },
    },
    "ops_api.views.calendar.CalendarEvents": {
        "get": {
            "summary": "The calendar feed: what ran, runs and will run in a window",
            "parameters": [
                query("source", "all (default), cron or heartbeat", str, ["all", "cron", "heartbeat"]),
                query("view", "week (default: Sunday 00:00 local + 7 d) or day", str, ["day", "week"]),
                query("start", "epoch seconds or ISO-8601 (naive = timezone_name)", str),
                query("end", "epoch seconds or ISO-8601", str),
                query("timezone_name", "IANA zone (unknown: UA_DEFAULT_TIMEZONE)", str),
                query("owner", "operator only: one owner's calendar", str),
            ],
            "responses": {200: ref("CalendarFeed"), **COMMON_ERRORS},
        },
    },
    "ops_api.views.calendar_actions.CalendarEventAction": {
        "post": {
            "summary": "Act on a calendar event: stasis decisions, run now, pause, resume, disable",
            "request": body(
                obj(
                    ("action",),
                    action=enum(
                        "approve_backfill_run",
                        "reschedule",
                        "delete_missed",
                        "run_now",
                        "pause",
                        "resume",
                        "disable",
                    ),
                    run_at={"oneOf": [STRING, NUMBER]},
                    timezone=STRING,
                )
            ),
            "responses": {200: ref("ActionResult"), 409: ERROR, **COMMON_ERRORS},
        },
    },
    "ops_api.views.calendar_actions.ChangeRequest": {
        "post": {
            "summary": "Propose a change from an instruction (every N unit, in N unit, at H[:MM]am/pm, ...)",
            "request": body(obj(("instruction",), instruction=STRING)),
            "responses": {201: wrapped("proposal", ref("Proposal")), **COMMON_ERRORS},
        },
    },
    "ops_api.views.calendar_actions.ChangeRequestConfirm": {
        "post": {
            "summary": "Approve or reject a proposal; confirming twice is a 409",
            "request": body(obj(("proposal_id", "approve"), proposal_id=STRING, approve=BOOLEAN)),
            "responses": {200: ref("ActionResult"), 409: ERROR, **COMMON_ERRORS},
        },
    },
    "ops_api.views.metrics.SchedulingRuntimeMetrics": {
        "get": {
            "summary": "Runtime counters and samples, summed across processes",
            "responses": {200: ref("Metrics"), **COMMON_ERRORS},
        },
    },
    "ops_api.views.stasis.NotificationList": {
        "get": {
            "summary": "Notifications of misses and failures",
            "parameters": [query("status", "live (default), resolved or all", str), *PAGING],
            "responses": {200: listed("notifications", "Notification"), **COMMON_ERRORS},
        },
    },
    "ops_api.views.stasis.StasisQueue": {
        "get": {
            "summary": "The stasis queue",
            "parameters": [query("status", "pending (default), a status, or all", str), *PAGING],
            "responses": {200: listed("stasis_queue", "StasisEntry"), **COMMON_ERRORS},
        },
    },
}


def _annotated(view: type, methods: dict[str, dict[str, Any]]) -> type:
    """A subclass of `view` whose handlers carry the schema (the original class is not touched)."""
    handlers = {}
    for method, arguments in methods.items():
        handler = getattr(view, method, None)
        if handler is None:  # described ahead of the view growing the method: nothing to annotate
            continue

        def copy(self: Any, *args: Any, _handler: Any = handler, **kwargs: Any) -> Any:
            return _handler(self, *args, **kwargs)

        operation_id = f"{method}_{re.sub(r'(?<!^)(?=[A-Z])', '_', view.__name__).lower()}"
        handlers[method] = extend_schema(**{"operation_id": operation_id, **arguments})(copy)
    return type(view.__name__, (view,), handlers)


def register(operations: dict[str, dict[str, dict[str, Any]]] = OPERATIONS) -> None:
    """Make one drf-spectacular view extension per annotated view (idempotent)."""
    for target, methods in operations.items():
        name = "Schema" + target.replace(".", "_")
        if any(ext.__name__ == name for ext in OpenApiViewExtension._registry):
            continue

        def view_replacement(self: Any, _methods: dict = methods) -> type:
            return _annotated(self.target, _methods)

        type(name, (OpenApiViewExtension,), {"target_class": target, "view_replacement": view_replacement})
