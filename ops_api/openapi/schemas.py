"""JSON Schemas of the API's bodies (contract §2-§8), as OpenAPI 3.0 components.

Written by hand from the contract and `scheduling/snapshots.py`, because the views return contract-shaped
dictionaries rather than serializer output. Objects stay open (`additionalProperties` allowed): the
contract lets us add fields freely, and clients must ignore the ones they don't know.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), /, **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def nullable_ref(name: str) -> Schema:
    """A reference that may be null (OpenAPI 3.0 ignores siblings of a bare $ref)."""
    return {"allOf": [ref(name)], "nullable": True}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object", "additionalProperties": True}
ANY: Schema = {}
EPOCH = nullable(NUMBER)
UTC = nullable({"type": "string", "format": "date-time"})

RUN_STATUSES = ("queued", "running", "success", "error", "skipped", "missed", "cancelled")
RUN_REASONS = ("schedule", "manual", "backfill", "reschedule", "calendar_action", "catch_up")

TARGET = {
    "description": "Dispatch target (contract §2.1); secrets are write-only and shown as ***.",
    "oneOf": [
        obj(
            ("type", "url"),
            type=enum("webhook"),
            url=STRING,
            secret=STRING,
            headers={"type": "object", "additionalProperties": STRING},
        ),
        obj(("type", "name"), type=enum("handler"), name=STRING),
    ],
}

SCHEDULE_INPUT: dict[str, Schema] = {
    "every": {"oneOf": [STRING, INTEGER], "description": '"30m", "2h", "45s", "1d" or seconds'},
    "cron_expr": {"type": "string", "description": "5 fields, optional 6th for seconds"},
    "run_at": {
        "oneOf": [STRING, NUMBER],
        "description": 'ISO-8601, epoch, "20m", "in 90 minutes", "tomorrow 9:15am"',
    },
}

JOB_INPUT = obj(
    user_id=STRING,
    command=STRING,
    **SCHEDULE_INPUT,
    timezone=STRING,
    enabled=BOOLEAN,
    delete_after_run=BOOLEAN,
    session_id=nullable(STRING),
    channel=nullable(STRING),
    title=STRING,
    priority=enum("critical", "normal", "low"),
    wake_heartbeat=enum("next", "now", "off"),
    missed_policy=enum("stasis", "skip", "run_once"),
    overlap=enum("skip", "allow"),
    timeout_seconds={"type": "integer", "minimum": 1, "maximum": 86400},
    target=TARGET,
    model=nullable(STRING),
    metadata=OBJECT,
)

RUN = obj(
    ("run_id", "job_id", "status", "reason", "occurrence_id", "attempt"),
    run_id=STRING,
    job_id=STRING,
    owner_id=STRING,
    session_id=nullable(STRING),
    title=nullable(STRING),
    status=enum(*RUN_STATUSES),
    reason=enum(*RUN_REASONS),
    scheduled_at=EPOCH,
    scheduled_at_utc=UTC,
    occurrence_id=nullable(STRING),
    created_at=EPOCH,
    started_at=EPOCH,
    finished_at=EPOCH,
    duration_seconds=EPOCH,
    error=nullable(STRING),
    output_preview=nullable(STRING),
    output={**nullable(STRING), "description": "the whole output: GET /cron/runs/{run_id} only"},
    attempt=INTEGER,
)

JOB = obj(
    ("job_id", "command", "timezone", "enabled", "next_run_at", "running"),
    job_id=STRING,
    user_id=STRING,
    command=STRING,
    schedule_kind=enum("every", "cron", "at"),
    every=nullable(INTEGER),
    every_seconds=nullable(INTEGER),
    cron_expr=nullable(STRING),
    run_at=UTC,
    run_at_epoch=EPOCH,
    timezone=STRING,
    enabled=BOOLEAN,
    delete_after_run=BOOLEAN,
    session_id=nullable(STRING),
    channel=nullable(STRING),
    title=nullable(STRING),
    priority=enum("critical", "normal", "low"),
    wake_heartbeat=enum("next", "now", "off"),
    missed_policy=enum("stasis", "skip", "run_once"),
    overlap=enum("skip", "allow"),
    timeout_seconds=INTEGER,
    target=nullable(OBJECT),
    model=nullable(STRING),
    metadata=nullable(OBJECT),
    created_at=EPOCH,
    updated_at=EPOCH,
    last_run_at=EPOCH,
    next_run_at=EPOCH,
    next_run_at_utc=UTC,
    running=BOOLEAN,
    last_run=nullable_ref("Run"),
)

SESSION_INPUT = obj(
    every={"oneOf": [STRING, INTEGER]},
    active_hours=nullable(STRING),
    timezone=STRING,
    enabled=BOOLEAN,
    owner_id=STRING,
    channel=nullable(STRING),
    target=TARGET,
    delivery=obj(mode=enum("last", "explicit", "none"), targets=array(ANY)),
    visibility=obj(show_ok=BOOLEAN, show_alerts=BOOLEAN, dedupe_window_seconds=INTEGER),
)

SESSION = obj(
    ("session_id", "enabled", "busy"),
    session_id=STRING,
    owner_id=STRING,
    every_seconds=INTEGER,
    every=INTEGER,
    active_hours=nullable(STRING),
    timezone=STRING,
    enabled=BOOLEAN,
    channel=nullable(STRING),
    target=nullable(OBJECT),
    delivery=nullable(OBJECT),
    visibility=nullable(OBJECT),
    busy=BOOLEAN,
    pending_wake=nullable(STRING),
    next_due_at=EPOCH,
    next_due_at_utc=UTC,
    last_run_at=EPOCH,
    last_summary=nullable(OBJECT),
    created_at=EPOCH,
)

HEARTBEAT_RUN = obj(
    run_id=STRING,
    session_id=STRING,
    status=STRING,
    reason=nullable(STRING),
    scheduled_at=EPOCH,
    started_at=EPOCH,
    finished_at=EPOCH,
    ok_only=nullable(BOOLEAN),
    error=nullable(STRING),
    output_preview=nullable(STRING),
)

STASIS_ENTRY = obj(
    ("entry_id", "event_id", "source", "source_ref", "status"),
    entry_id=STRING,
    event_id=STRING,
    source=enum("cron", "heartbeat"),
    source_ref=STRING,
    owner_id=STRING,
    status=enum("pending", "approved_and_run", "rescheduled", "deleted", "skipped_superseded"),
    scheduled_at_utc=UTC,
    scheduled_at_epoch=EPOCH,
    detected_at_utc=UTC,
    resolved_at_utc=UTC,
    reason=nullable(STRING),
    run_id=nullable(STRING),
    resolution_run_id=nullable(STRING),
    event=nullable(OBJECT),
)

NOTIFICATION = obj(
    ("notification_id", "kind", "status"),
    notification_id=STRING,
    kind=STRING,
    source=STRING,
    source_ref=STRING,
    owner_id=STRING,
    status=STRING,
    title=STRING,
    detail=nullable(STRING),
    actions=array(obj(action=STRING, method=STRING, url=STRING)),
    count=INTEGER,
    run_id=nullable(STRING),
    created_at_utc=UTC,
    updated_at_utc=UTC,
)

SYSTEM_EVENT = obj(
    id=INTEGER,
    session_id=nullable(STRING),
    owner_id=STRING,
    text=STRING,
    status=enum("pending", "delivered"),
    created_at=EPOCH,
    created_at_utc=UTC,
    delivered_at=EPOCH,
    delivered_at_utc=UTC,
    delivered_run_id=nullable(STRING),
)

LIFECYCLE_EVENT = obj(
    ("seq", "event_type", "source", "source_ref", "occurred_at_utc", "payload"),
    seq=INTEGER,
    event_type=STRING,
    source=enum("cron", "heartbeat"),
    source_ref=STRING,
    owner_id=STRING,
    session_id=STRING,
    channel=STRING,
    occurred_at_utc={"type": "string", "format": "date-time"},
    status=STRING,
    payload=OBJECT,
)

ERROR = obj(
    ("error", "detail"),
    error={"type": "string", "description": "machine-readable code, e.g. invalid, not_found, conflict"},
    detail={"type": "string", "description": "a human sentence"},
    field={"type": "string", "description": "the offending field (for bulk bodies: <index>.<name>)"},
)

HEALTH = obj(
    ("status", "timestamp", "db_status"),
    status=STRING,
    timestamp={"type": "string", "format": "date-time"},
    version=STRING,
    db_status=STRING,
    scheduler=OBJECT,
    projector=OBJECT,
    channel_layer=OBJECT,
)

CALENDAR_EVENT = obj(
    ("event_id", "source", "source_ref", "status", "scheduled_at_epoch", "scheduled_at_utc"),
    event_id={"type": "string", "description": "source|source_ref|<int epoch>"},
    source=enum("cron", "heartbeat"),
    source_ref=STRING,
    owner_id=nullable(STRING),
    session_id=nullable(STRING),
    channel=nullable(STRING),
    title=nullable(STRING),
    description=nullable(STRING),
    category=nullable(STRING),
    color_key=nullable(STRING),
    status=enum("scheduled", "running", "success", "failed", "missed", "disabled", "skipped"),
    scheduled_at_epoch=NUMBER,
    scheduled_at_utc=STRING,
    scheduled_at_local=nullable(STRING),
    timezone_display=nullable(STRING),
    always_running=BOOLEAN,
    running=BOOLEAN,
    actions=array(STRING),
    run_id=nullable(STRING),
    run_status=nullable(STRING),
)

CALENDAR_FEED = obj(
    (
        "timezone",
        "view",
        "start_utc",
        "end_utc",
        "events",
        "always_running",
        "stasis_queue",
        "legend",
        "version",
        "path",
    ),
    timezone=STRING,
    view=enum("day", "week", "custom"),
    start_utc=STRING,
    end_utc=STRING,
    start_local=STRING,
    end_local=STRING,
    events=array(ref("CalendarEvent")),
    always_running=array(OBJECT),
    stasis_queue=array(ref("StasisEntry")),
    legend=OBJECT,
    version=INTEGER,
    last_event_at_utc=nullable(STRING),
    path=enum("projection", "scan"),
)

PROPOSAL = obj(
    ("proposal_id", "event_id", "status"),
    proposal_id=STRING,
    event_id=STRING,
    source=STRING,
    source_ref=STRING,
    owner_id=nullable(STRING),
    instruction=STRING,
    changes=nullable(OBJECT),
    action=nullable(STRING),
    run_at_utc=nullable(STRING),
    timezone=nullable(STRING),
    summary=nullable(STRING),
    status=STRING,
    created_at_utc=nullable(STRING),
    decided_at_utc=nullable(STRING),
    result=nullable(OBJECT),
)

ACTION_RESULT = obj(
    ("status", "action", "event_id"),
    status=enum("ok"),
    action=STRING,
    event_id=STRING,
    entry=ref("StasisEntry"),
    job=ref("Job"),
    run=ref("Run"),
    session=ref("Session"),
    proposal=ref("Proposal"),
)

METRICS = obj(
    ("metrics",),
    metrics=obj(
        ("counters",),
        started_at=ANY,
        uptime_seconds=NUMBER,
        counters={"type": "object", "additionalProperties": NUMBER},
        event_counts=OBJECT,
        projection=OBJECT,
        event_bus=OBJECT,
        projection_state=OBJECT,
    ),
)

COMPONENTS: dict[str, Schema] = {
    "Error": ERROR,
    "JobInput": JOB_INPUT,
    "Job": JOB,
    "Run": RUN,
    "SessionInput": SESSION_INPUT,
    "Session": SESSION,
    "HeartbeatRun": HEARTBEAT_RUN,
    "StasisEntry": STASIS_ENTRY,
    "Notification": NOTIFICATION,
    "SystemEvent": SYSTEM_EVENT,
    "LifecycleEvent": LIFECYCLE_EVENT,
    "Health": HEALTH,
    "CalendarEvent": CALENDAR_EVENT,
    "CalendarFeed": CALENDAR_FEED,
    "Proposal": PROPOSAL,
    "ActionResult": ACTION_RESULT,
    "Metrics": METRICS,
}
