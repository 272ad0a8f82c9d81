"""Admin form values → the API's input shape, so admin saves go through the API's validation and
services. Absent fields keep their values (PATCH semantics); a changed schedule field sends all three,
and the API's precedence (run_at > cron_expr > every) picks the kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

JOB_FIELD_FOR_API = {"user_id": "owner_id", "every": "every_seconds", "schedule": None}
JOB_API_FOR_FIELD = {"owner_id": "user_id", "every_seconds": "every"}
JOB_SCHEDULE_FIELDS = ("run_at", "cron_expr", "every_seconds")
SESSION_FIELD_FOR_API = {"every": "every_seconds"}


def job_form_field(api_field: str | None) -> str | None:
    if api_field is None:
        return None
    return JOB_FIELD_FOR_API.get(api_field, api_field)


def session_form_field(api_field: str | None) -> str | None:
    if api_field is None:
        return None
    return SESSION_FIELD_FOR_API.get(api_field, api_field)


def job_api_data(cleaned: dict[str, Any], changed: list[str], *, creating: bool) -> dict[str, Any]:
    names = set(cleaned) if creating else set(changed) & set(cleaned)
    if names & set(JOB_SCHEDULE_FIELDS):
        names |= set(JOB_SCHEDULE_FIELDS)
    return {JOB_API_FOR_FIELD.get(name, name): _api_value(cleaned[name]) for name in names}


def session_api_data(cleaned: dict[str, Any], changed: list[str], *, creating: bool) -> dict[str, Any]:
    names = (set(cleaned) if creating else set(changed) & set(cleaned)) - {"session_id", "busy"}
    return {"every" if name == "every_seconds" else name: _api_value(cleaned[name]) for name in names}


def _api_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
