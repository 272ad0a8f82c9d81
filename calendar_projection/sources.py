"""Calendar sources (jobs and heartbeat sessions) in the read model: filling one from a contract snapshot,
turning one into the pure recurrence and the shown info, and materialising its future occurrences."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.base import ModelState

from calendar_projection.expansion import Recurrence, upcoming
from calendar_projection.models import CalendarEntry, CalendarSource
from calendar_projection.shapes import FutureBody, Occurrence, SourceInfo, event_id_of, static_body

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
        src.dense = is_dense(src, now)
        outcome = result[pk] = _diff(src, existing[pk], now)
        upserts += outcome.changed
        src.materialised_until = now + HORIZON
    removed = [event_id for outcome in result.values() for event_id in outcome.removed]
    for start in range(0, len(removed), 2000):
        CalendarEntry.objects.filter(pk__in=removed[start : start + 2000]).delete()
    save_entries(upserts)
    return result


def dense_limit() -> int:
    return int(settings.UA_CALENDAR_MAX_OCCURRENCES_PER_JOB)


def is_dense(src: CalendarSource, now: datetime) -> bool:
    """Whether the source fires more often in a day than a calendar window may list one job's events.
    Such a job shows in `always_running` for any window of a day or more, so materialising its 15-day
    future would only cost rows (and, for 50 minutely jobs, a million of them)."""
    if src.deleted or not src.kind:
        return False
    limit = dense_limit()
    return len(upcoming(recurrence_of(src), now, now + timedelta(days=1), limit + 1)) > limit


def dense_future(src: CalendarSource, start: datetime, until: datetime, now: datetime) -> list[CalendarEntry]:
    """A dense source's future occurrences in [max(start, now), until) as unsaved entries, at most
    dense_limit() + 1 (one more than a window lists: enough to know it is always running). Bodies are
    rendered only when the window may list them."""
    limit = dense_limit()
    moments = upcoming(recurrence_of(src), max(start, now), until, limit + 1)
    status = "scheduled" if src.enabled else "disabled"
    info = info_of(src) if len(moments) <= limit else None
    rows = []
    for moment in moments:
        row = CalendarEntry(
            event_id=event_id_of(src.source, src.source_ref, moment), calendar_source_id=src.pk,
            source=src.source, source_ref=src.source_ref, owner_id=src.owner_id, scheduled_at=moment,
            status=status,
        )  # fmt: skip
        row.body = static_body(occurrence_of(row), info, False) if info else "{}"
        rows.append(row)
    return rows


def future_count(src: CalendarSource, start: datetime, until: datetime, now: datetime) -> int:
    """How many occurrences a dense source has in [max(start, now), until): by arithmetic for an interval
    (anchor + k * every, k >= 1), else by expansion (bounded like the scan path's)."""
    low = max(start, now)
    if until <= low:
        return 0
    if src.kind == "every" and src.every_seconds and src.anchor_at is not None:
        every = src.every_seconds
        first_k = max(1, math.ceil((low - src.anchor_at).total_seconds() / every))
        last_k = math.ceil((until - src.anchor_at).total_seconds() / every) - 1
        return max(0, last_k - first_k + 1)
    return len(upcoming(recurrence_of(src), low, until, MAX_MATERIALISED))


def _diff(src: CalendarSource, current: dict[str, CalendarEntry], now: datetime) -> Materialised:
    status = "scheduled" if src.enabled else "disabled"
    info = info_of(src)
    outcome = Materialised()
    wanted: set[str] = set()
    # A dense source keeps no future rows (the feed expands it per request): `wanted` stays empty.
    moments = [] if src.dense else upcoming(recurrence_of(src), now, now + HORIZON, MAX_MATERIALISED)
    body = FutureBody(info, status, src.owner_id)
    for moment in moments:
        event_id = event_id_of(src.source, src.source_ref, moment)
        wanted.add(event_id)
        row = current.get(event_id)
        if row is not None and row.run_id:
            continue  # the occurrence has a run: its run shows
        if row is None:
            row = new_entry(event_id=event_id, calendar_source_id=src.pk, source=src.source,
                            source_ref=src.source_ref, scheduled_at=moment, status=status)  # fmt: skip
        elif (row.status, row.scheduled_at, row.owner_id) == (status, moment, src.owner_id) and row.body:
            continue
        row.status, row.scheduled_at, row.owner_id = status, moment, src.owner_id
        row.body = body.render(event_id, moment)
        outcome.changed.append(row)
    outcome.removed = [eid for eid, row in current.items() if not row.run_id and eid not in wanted]
    return outcome


ENTRY_FIELDS = [
    "calendar_source", "source", "source_ref", "owner_id", "scheduled_at", "status", "run_id",
    "run_status", "run_attempt", "run_created_at", "run_seq", "body",
]  # fmt: skip


ENTRY_DEFAULTS: dict[str, Any] = {
    "owner_id": "", "run_id": "", "run_status": "", "run_attempt": 0, "run_created_at": None, "run_seq": 0,
    "body": "",
}  # fmt: skip


def new_entry(**values: Any) -> CalendarEntry:
    """An unsaved CalendarEntry, made the way Model.__init__ would make it from these keyword values but
    without its per-field work and signals: materialising a new job makes hundreds at a time."""
    row = CalendarEntry.__new__(CalendarEntry)
    row._state = ModelState()
    row.__dict__.update(ENTRY_DEFAULTS)
    row.__dict__.update(values)
    return row


def occurrence_of(row: CalendarEntry) -> Occurrence:
    return Occurrence(row.event_id, row.scheduled_at, row.status, row.owner_id, row.run_id, row.run_status)


def render_bodies(rows: list[CalendarEntry], sources: dict[int, CalendarSource]) -> None:
    """Render `body` for rows (their sources in `sources` by id), with the stasis actions where a
    pending entry exists for the occurrence."""
    from calendar_projection.models import CalendarStasisEntry

    missed = [row.event_id for row in rows if row.status == "missed"]
    pending: set[str] = set()
    if missed:
        rows_pending = CalendarStasisEntry.objects.filter(event_id__in=missed, status="pending")
        pending = set(rows_pending.values_list("event_id", flat=True))
    infos = {pk: info_of(src) for pk, src in sources.items()}
    for row in rows:
        row.body = static_body(occurrence_of(row), infos[row.calendar_source_id], row.event_id in pending)


def rerender(event_ids: set[str], source_ids: set[int], skip: set[str]) -> None:
    """Re-render stored bodies after what they show changed elsewhere: a source's definition (title,
    enabled) or an occurrence's stasis entry. Rows in `skip` were rendered by this batch already."""
    query = Q(pk__in=list(event_ids)) | Q(calendar_source_id__in=list(source_ids))
    if not event_ids and not source_ids:
        return
    candidates = CalendarEntry.objects.filter(query)
    if len(skip) <= 5000:  # the rows this batch rendered (a new hourly job's 360) stay in the database
        candidates = candidates.exclude(pk__in=list(skip))
    rows = [row for row in candidates if row.event_id not in skip]
    if not rows:
        return
    sources = CalendarSource.objects.in_bulk({row.calendar_source_id for row in rows})
    render_bodies(rows, sources)
    CalendarEntry.objects.bulk_update(rows, ["body"], batch_size=1000)


# Below this many rows the ORM's upsert is as quick as staging them.
COPY_FROM = 50


def save_entries(rows: list[CalendarEntry]) -> None:
    """Insert or update rows by event_id (INSERT ... ON CONFLICT DO UPDATE). On PostgreSQL a large set is
    streamed with COPY into a staging table first: a new hourly job brings 360 rows, and binding them as
    query parameters cost the projector several times what the rest of the event did."""
    if not rows:
        return
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM:
        _copy_upsert(rows)
        return
    for start in range(0, len(rows), 2000):
        CalendarEntry.objects.bulk_create(
            rows[start : start + 2000],
            update_conflicts=True,
            unique_fields=["event_id"],
            update_fields=ENTRY_FIELDS,
        )


STAGE = "calendar_entry_stage"


COPY_CHUNK = 1000


def _copy_text(value: str) -> str:
    """A text value in COPY's text format: backslash, tab, newline and carriage return escaped."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _copy_line(row: CalendarEntry) -> str:
    """One row in COPY's text format, in _copy_upsert's column order. Formatting the line here is about
    three times cheaper than psycopg's per-value adaptation (write_row) for these plain values."""
    created = row.run_created_at
    return "\t".join(
        (
            _copy_text(row.event_id), str(row.calendar_source_id), _copy_text(row.source),
            _copy_text(row.source_ref), _copy_text(row.owner_id), row.scheduled_at.isoformat(),
            _copy_text(row.status), _copy_text(row.run_id), _copy_text(row.run_status), str(row.run_attempt),
            "\\N" if created is None else created.isoformat(), str(row.run_seq), _copy_text(row.body),
        )
    ) + "\n"  # fmt: skip


def _copy_upsert(rows: list[CalendarEntry]) -> None:
    table = CalendarEntry._meta.db_table
    by_name = {field.name: str(field.column) for field in CalendarEntry._meta.concrete_fields}
    columns = [by_name[name] for name in ["event_id", *ENTRY_FIELDS]]
    names = ", ".join(columns)
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns[1:])
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # Per connection, emptied by every commit; the caller's transaction holds the rows until the upsert.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(f"COPY {STAGE} ({names}) FROM STDIN") as copy:
            for start in range(0, len(rows), COPY_CHUNK):
                copy.write("".join(_copy_line(row) for row in rows[start : start + COPY_CHUNK]))
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {STAGE} "
            f"ON CONFLICT (event_id) DO UPDATE SET {updates}"
        )
        cursor.execute(f"DELETE FROM {STAGE}")
