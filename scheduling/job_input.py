"""Validation of job input (contract §2): turns a client's JSON object into clean model field values,
or raises InvalidInput naming the field. Nothing here touches the database."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from scheduling import schedule
from scheduling.errors import InvalidInput
from scheduling.models import CronJob, MissedPolicy, OverlapPolicy, Priority, WakeMode
from scheduling.targets import clean_target

SCHEDULE_FIELDS = ("run_at", "cron_expr", "every")
CRON_EXPR_MAX_LENGTH = 200  # the column's size
CRON_INTERVAL_PROBES = 16  # consecutive fires inspected for the interval floor
STRING_FIELDS = {"session_id": 128, "channel": 128, "title": 200, "model": 128, "user_id": 128}
CHOICE_FIELDS = {
    "priority": Priority.values,
    "wake_heartbeat": WakeMode.values,
    "missed_policy": MissedPolicy.values,
    "overlap": OverlapPolicy.values,
}
BOOL_FIELDS = ("enabled", "delete_after_run")
INPUT_FIELDS = frozenset(
    {*SCHEDULE_FIELDS, *STRING_FIELDS, *CHOICE_FIELDS, *BOOL_FIELDS}
    | {"command", "timezone", "timeout_seconds", "target", "metadata"}
)
# What a GET shows but a client cannot set: ignored on input, so a GET-modify-PUT round trip works.
OUTPUT_ONLY_FIELDS = frozenset(
    {
        "job_id",
        "schedule_kind",
        "every_seconds",
        "run_at_epoch",
        "created_at",
        "updated_at",
        "last_run_at",
        "next_run_at",
        "next_run_at_utc",
        "running",
        "last_run",
    }
)


def clean_job_input(data: Any, *, existing: CronJob | None, partial: bool, now: datetime) -> dict[str, Any]:
    """Clean values for the model fields present in `data` (all of them unless `partial`)."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    _refuse_unknown_fields(data)
    clean: dict[str, Any] = {}
    _clean_command(data, clean, partial)
    for name, max_length in STRING_FIELDS.items():
        if name in data:
            clean["owner_id" if name == "user_id" else name] = _string(data[name], name, max_length)
    for name, allowed in CHOICE_FIELDS.items():
        if name in data and data[name] is not None:
            clean[name] = _choice(data[name], name, allowed)
    for name in BOOL_FIELDS:
        if name in data and data[name] is not None:
            clean[name] = _boolean(data[name], name)
    if "timeout_seconds" in data and data["timeout_seconds"] is not None:
        clean["timeout_seconds"] = _int_between(data["timeout_seconds"], "timeout_seconds", 1, 86400)
    if "timezone" in data or not partial:
        tz = _parse(schedule.parse_timezone, _optional_string(data.get("timezone"), "timezone"))
        clean["timezone"] = str(tz)
    if "target" in data:
        clean["target"] = clean_target(data["target"], existing.target if existing else None)
    if "metadata" in data and data["metadata"] is not None:
        if not isinstance(data["metadata"], dict):
            raise InvalidInput("metadata must be a JSON object", "metadata")
        clean["metadata"] = data["metadata"]
    tz_name = clean.get("timezone") or (existing.timezone if existing else "UTC")
    clean.update(_clean_schedule(data, partial=partial, tz_name=tz_name, now=now, existing=existing))
    return clean


def _refuse_unknown_fields(data: dict) -> None:
    """A misspelt field (`timzone`) must fail loudly: ignoring it would silently create a different job."""
    for name in data:
        if name not in INPUT_FIELDS and name not in OUTPUT_ONLY_FIELDS:
            raise InvalidInput(f"unknown field {str(name)[:80]!r}", str(name)[:200])


def _clean_command(data: dict, clean: dict, partial: bool) -> None:
    if "command" in data or not partial:
        command = data.get("command")
        if not isinstance(command, str) or not command.strip():
            raise InvalidInput("command is required: the instruction delivered to the target", "command")
        clean["command"] = command


def _clean_schedule(
    data: dict, *, partial: bool, tz_name: str, now: datetime, existing: CronJob | None
) -> dict[str, Any]:
    """Exactly one schedule kind wins, by precedence run_at > cron_expr > every. An update that names any
    schedule field replaces the whole schedule; one that names none keeps it."""
    given = [name for name in SCHEDULE_FIELDS if data.get(name) not in (None, "")]
    if not given:
        if partial and not any(name in data for name in SCHEDULE_FIELDS):
            return {}
        raise InvalidInput("a schedule is required: one of run_at, cron_expr or every", "schedule")
    blank = {"run_at": None, "cron_expr": "", "every_seconds": None}
    if "run_at" in given:
        run_at = _parse(schedule.parse_run_at, data["run_at"], tz_name, now)
        grace = timedelta(seconds=settings.UA_MISFIRE_GRACE_SECONDS)
        # A one-shot's own run_at sent back unchanged (GET-modify-PUT after it ran) is not a new schedule.
        unchanged = existing is not None and existing.schedule_kind == "at" and existing.run_at == run_at
        if run_at < now - grace and not unchanged:
            raise InvalidInput("run_at is in the past", "run_at")
        return {**blank, "schedule_kind": "at", "run_at": run_at}
    if "cron_expr" in given:
        if not isinstance(data["cron_expr"], str):
            raise InvalidInput("cron_expr must be a string", "cron_expr")
        expr = _parse(schedule.validate_cron, data["cron_expr"])
        if len(expr) > CRON_EXPR_MAX_LENGTH:
            raise InvalidInput(f"cron_expr must be at most {CRON_EXPR_MAX_LENGTH} characters", "cron_expr")
        _check_cron_interval(expr, tz_name, now)
        return {**blank, "schedule_kind": "cron", "cron_expr": expr}
    every = _parse(schedule.parse_every, data["every"])
    minimum = settings.UA_CRON_MIN_INTERVAL_SECONDS
    if every < minimum:
        raise InvalidInput(f"every must be at least {minimum} seconds", "every")
    return {**blank, "schedule_kind": "every", "every_seconds": every}


def _check_cron_interval(expr: str, tz_name: str, now: datetime) -> None:
    """The interval floor applies to cron too: `* * * * * *` would otherwise fire every second."""
    minimum = settings.UA_CRON_MIN_INTERVAL_SECONDS
    tz = schedule.parse_timezone(tz_name)
    fires = schedule.occurrences(
        "cron",
        cron_expr=expr,
        every_seconds=None,
        run_at=None,
        tz=tz,
        anchor=now,
        after=now,
        until=now + timedelta(days=400),
        limit=CRON_INTERVAL_PROBES,
    )
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(fires, fires[1:], strict=False)]
    if gaps and min(gaps) < minimum:
        raise InvalidInput(f"cron_expr fires more often than every {minimum} seconds", "cron_expr")


def _parse(parser: Any, *args: Any) -> Any:
    try:
        return parser(*args)
    except schedule.ScheduleError as error:
        raise InvalidInput(error.detail, error.field) from None


def _string(value: Any, name: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", name)
    if len(value) > max_length:
        raise InvalidInput(f"{name} must be at most {max_length} characters", name)
    return value


def _optional_string(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", name)
    return value


def _choice(value: Any, name: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", name)
    return value


def _boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", name)
    return value


def _int_between(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{name} must be a whole number", name)
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise InvalidInput(f"{name} must be a whole number", name)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}", name)
    return int(value)
