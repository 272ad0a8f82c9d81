"""Calendar sources (jobs and heartbeat sessions) in the read model: filling one from a contract snapshot,
turning one into the pure recurrence and the shown info, and materialising its future occurrences."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q

from calendar_projection.expansion import Recurrence, upcoming
from calendar_projection.models import CalendarEntry, CalendarSource
from calendar_projection.shapes import SourceInfo, event_id_of

# Future occurrences are kept one day beyond the contract's 14-day window and rolled forward when less
# than half a day of that slack is left, so a window ending at now + 14 d is always covered.
HORIZON = timedelta(days=15)
ROLL_WHEN_LEFT = timedelta(days=14, hours=12)
# The finest schedule allowed is one a minute: 15 days of it is 21,600 occurrences.
MAX_MATERIALISED = 25_000


def parse_iso(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def apply_job_snapshot(src: CalendarSource, job: dict[str, Any], deleted: bool) -> None:
    """Take a job's definition from its contract snapshot (`scheduling.snapshots.job_snapshot`)."""
    command = job.get("command") or ""
    src.owner_id = job.get("user_id") or ""
    src.session_id = job.get("session_id") or ""
    src.channel = job.get("channel") or ""
    src.title = (job.get("title") or command[:200])[:200]
    src.description = command
    src.category = job.get("priority") or "normal"
    src.timezone = job.get("timezone") or "UTC"
    src.kind = job.get("schedule_kind") or ""
    src.cron_expr = job.get("cron_expr") or ""
    src.every_seconds = job.get("every_seconds")
    src.run_at = parse_iso(job.get("run_at"))
    src.anchor_at = parse_iso(job.get("anchor_at_utc"))
    if src.anchor_at is None and src.every_seconds and job.get("next_run_at_utc"):
        # Snapshots written before the anchor was carried: the next fire time lies on the same lattice.
        next_run_at = parse_iso(job["next_run_at_utc"])
        if next_run_at is None:
            raise ValueError(f"unreadable next_run_at_utc {job['next_run_at_utc']!r} in a job snapshot")
        src.anchor_at = next_run_at - timedelta(seconds=src.every_seconds)
    src.enabled = bool(job.get("enabled", True)) and not deleted
    src.deleted = deleted


def apply_session_snapshot(src: CalendarSource, session: dict[str, Any], deleted: bool) -> None:
    src.owner_id = session.get("owner_id") or ""
    src.session_id = src.source_ref
    src.channel = session.get("channel") or ""
    every = session.get("every_seconds")
    src.title = f"heartbeat {src.source_ref}"
    src.description = f"heartbeat every {every}s" + (
        f" during {session['active_hours']}" if session.get("active_hours") else ""
    )
    src.category = "normal"
    src.timezone = session.get("timezone") or "UTC"
    src.kind = "heartbeat"
    src.every_seconds = every
    src.active_hours = session.get("active_hours") or ""
    src.enabled = bool(session.get("enabled", True)) and not deleted
    src.deleted = deleted
    if deleted or not src.enabled:
        src.next_due_at = None


def recurrence_of(src: CalendarSource) -> Recurrence:
    return Recurrence(
        kind=src.kind if not src.deleted else "",
        timezone=src.timezone,
        cron_expr=src.cron_expr,
        every_seconds=src.every_seconds,
        run_at=src.run_at,
        anchor_at=src.anchor_at,
        active_hours=src.active_hours,
        next_due_at=src.next_due_at,
    )


def continues(before: Recurrence, after: Recurrence) -> bool:
    """Whether `after` only moved a heartbeat's due time to an occurrence `before` already produced,
    so both produce the same future from then on."""
    if before.kind != "heartbeat" or after.kind != "heartbeat" or before.next_due_at is None:
        return False
    if after.next_due_at is None or after.next_due_at < before.next_due_at:
        return False
    if (before.every_seconds, before.active_hours, before.timezone) != (
        after.every_seconds,
        after.active_hours,
        after.timezone,
    ):
        return False
    if after.next_due_at == before.next_due_at:
        return True
    found = upcoming(before, after.next_due_at, after.next_due_at + timedelta(microseconds=1), 1)
    return found == [after.next_due_at]


def info_of(src: CalendarSource) -> SourceInfo:
    # A deleted job (or one known only from its runs) is shown as the scan path can show it: from what
    # its runs carry, without the definition's description and priority.
    deleted = src.deleted or src.definition_seq < 0
    return SourceInfo(
        source=src.source, source_ref=src.source_ref, owner_id=src.owner_id, session_id=src.session_id,
        channel=src.channel, title=src.title, description="" if deleted else src.description,
        category="normal" if deleted else src.category, timezone=src.timezone,
        enabled=src.enabled and not deleted, deleted=deleted, every_seconds=src.every_seconds,
    )  # fmt: skip


@dataclass
class Materialised:
    changed: list[CalendarEntry] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def materialise(sources: list[CalendarSource], now: datetime) -> dict[int, Materialised]:
    """Bring each source's future (scheduled or disabled) rows in line with its definition over
    [now, now + HORIZON): insert missing ones, update changed ones, delete the rest and any left in the
    past. Rows with a run are history and never touched. Returns what changed per source id."""
    result: dict[int, Materialised] = {}
    if not sources:
        return result
    by_id = {src.pk: src for src in sources}
    existing: dict[int, dict[str, CalendarEntry]] = {pk: {} for pk in by_id}
    rows = CalendarEntry.objects.filter(calendar_source_id__in=list(by_id)).filter(
        Q(run_id="") | Q(scheduled_at__gte=now)
    )
    for row in rows:
        existing[row.calendar_source_id][row.event_id] = row
    upserts: list[CalendarEntry] = []
    for pk, src in by_id.items():
        outcome = result[pk] = _diff(src, existing[pk], now)
        upserts += outcome.changed
        src.materialised_until = now + HORIZON
    removed = [event_id for outcome in result.values() for event_id in outcome.removed]
    for start in range(0, len(removed), 2000):
        CalendarEntry.objects.filter(pk__in=removed[start : start + 2000]).delete()
    save_entries(upserts)
    return result


def _diff(src: CalendarSource, current: dict[str, CalendarEntry], now: datetime) -> Materialised:
    status = "scheduled" if src.enabled else "disabled"
    outcome = Materialised()
    wanted: set[str] = set()
    for moment in upcoming(recurrence_of(src), now, now + HORIZON, MAX_MATERIALISED):
        event_id = event_id_of(src.source, src.source_ref, moment)
        wanted.add(event_id)
        row = current.get(event_id)
        if row is not None and row.run_id:
            continue  # the occurrence has a run: its run shows
        if row is None:
            row = CalendarEntry(event_id=event_id, calendar_source_id=src.pk, source=src.source,
                                source_ref=src.source_ref, scheduled_at=moment, status=status)  # fmt: skip
        elif (row.status, row.scheduled_at, row.owner_id) == (status, moment, src.owner_id):
            continue
        row.status, row.scheduled_at, row.owner_id = status, moment, src.owner_id
        outcome.changed.append(row)
    outcome.removed = [eid for eid, row in current.items() if not row.run_id and eid not in wanted]
    return outcome


ENTRY_FIELDS = [
    "calendar_source", "source", "source_ref", "owner_id", "scheduled_at", "status", "run_id",
    "run_status", "run_attempt", "run_created_at", "run_seq",
]  # fmt: skip


def save_entries(rows: list[CalendarEntry]) -> None:
    """Insert or update rows by event_id in one statement per chunk (INSERT ... ON CONFLICT DO UPDATE)."""
    for start in range(0, len(rows), 2000):
        CalendarEntry.objects.bulk_create(
            rows[start : start + 2000],
            update_conflicts=True,
            unique_fields=["event_id"],
            update_fields=ENTRY_FIELDS,
        )
