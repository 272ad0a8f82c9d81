"""One log line per run start, run end, miss, stasis entry and resolution (contract §8), written after
the transaction that made it commits.

Every one of those changes appends its lifecycle event, whichever door it came through (a claim, an
outcome, a lease sweep, a callback, the API, the admin), so the event log is the one place that sees them
all: `event_log.append_events` hands each batch here and the lines go out on commit (never for work that
rolled back). The fields are in the message itself, unquoted `key=value`, so the default log format shows
them and `grep action=run_missed` works on any process's output.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import transaction

if TYPE_CHECKING:
    from scheduling.event_log import EventDraft

logger = logging.getLogger("scheduling.lifecycle")

ACTION_BY_EVENT = {
    "cron_run_started": "run_started",
    "cron_run_completed": "run_finished",
    "cron_run_failed": "run_finished",
    "cron_run_missed": "run_missed",
    "heartbeat_started": "run_started",
    "heartbeat_completed": "run_finished",
    "heartbeat_failed": "run_finished",
    "heartbeat_missed": "run_missed",
    "stasis_entry_created": "stasis_created",
    "stasis_entry_resolved": "stasis_resolved",
}
_UNSAFE = re.compile(r"[\s\"'=]+")


def lines_for(drafts: Sequence[EventDraft]) -> list[tuple[str, str]]:
    """(action, message) for each draft that gets a line; other events (job edits, skips) get none."""
    lines = []
    for draft in drafts:
        action = ACTION_BY_EVENT.get(draft.event_type)
        if action is not None:
            lines.append((action, _message(action, draft)))
    return lines


def _message(action: str, draft: EventDraft) -> str:
    payload: dict[str, Any] = draft.payload or {}
    owner_key = "job_id" if draft.source == "cron" else "session_id"
    fields: dict[str, Any] = {"action": action, "source": draft.source, owner_key: draft.source_ref}
    if action.startswith("stasis"):
        fields["entry_id"] = payload.get("entry_id")
        fields["run_id"] = (payload.get("entry") or {}).get("run_id")
    else:
        fields["run_id"] = payload.get("run_id")
        fields["reason"] = (payload.get("run") or {}).get("reason")
    fields["status"] = draft.status
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def _value(value: object) -> str:
    # Unquoted values must stay one token each: ids are safe already, anything else is made so.
    return _UNSAFE.sub("_", str(value)) if value not in (None, "") else "-"


def log_after_commit(drafts: Sequence[EventDraft]) -> None:
    """Register the batch's lines to be written when the current transaction commits."""
    lines = lines_for(drafts)
    if lines:
        transaction.on_commit(lambda: _write(lines))


def _write(lines: list[tuple[str, str]]) -> None:
    for action, message in lines:
        logger.info(message, extra={"action": action})
