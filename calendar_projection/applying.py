"""Applying lifecycle events to the calendar read model, a batch at a time.

Every rule here is order-independent, so shuffled or repeated events end in the state the in-order feed
gives (tests/unit/test_projector.py feeds both):
- a definition (job created/updated/deleted, heartbeat scheduled) applies only if its seq is newer than
  the source's `definition_seq`; a deleted cron job is a tombstone (job ids are never reused), so a late
  `created` cannot bring it back;
- an occurrence shows the run with the highest (attempt, created_at, run_id); for one run, a terminal
  state always supersedes `started`, and otherwise an older seq never overwrites a newer one;
- a stasis entry takes its newest event, and a resolved entry never returns to pending.
The caller holds the projector lock and the transaction; nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calendar_projection import sources as src_mod
from calendar_projection.models import CalendarEntry, CalendarSource, CalendarStasisEntry
from calendar_projection.shapes import CALENDAR_STATUS, epoch_to_datetime, run_rank
from scheduling.models import HeartbeatSession

DEFINITION_EVENTS = frozenset(
    {"cron_job_created", "cron_job_updated", "cron_job_deleted", "heartbeat_scheduled"}
)
RUN_EVENTS = frozenset({
    "cron_run_started", "cron_run_completed", "cron_run_failed", "cron_run_missed", "heartbeat_started",
    "heartbeat_completed", "heartbeat_failed", "heartbeat_skipped", "heartbeat_missed",
})  # fmt: skip
STASIS_EVENTS = frozenset({"stasis_entry_created", "stasis_entry_resolved"})


@dataclass
class Fact:
    """The parts of a lifecycle event the projector reads (a LifecycleEvent or a rebuild's row)."""

    seq: int
    event_type: str
    source: str
    source_ref: str
    status: str
    payload: dict[str, Any]


@dataclass
class Batch:
    now: datetime
    fresh: bool = False  # rebuild: the tables are empty, nothing to load
    sources: dict[tuple[str, str], CalendarSource] = field(default_factory=dict)
    entries: dict[str, CalendarEntry] = field(default_factory=dict)
    stasis: dict[str, CalendarStasisEntry] = field(default_factory=dict)
    dirty_sources: set[tuple[str, str]] = field(default_factory=set)
    dirty_entries: set[str] = field(default_factory=set)
    dirty_stasis: set[str] = field(default_factory=set)
    rematerialise: dict[tuple[str, str], int] = field(default_factory=dict)  # key -> triggering seq
    due_refresh: set[str] = field(default_factory=set)
    redefined: set[tuple[str, str]] = field(default_factory=set)
    touched: dict[int, set[str]] = field(default_factory=dict)  # seq -> event ids it changed
    removed: dict[int, set[str]] = field(default_factory=dict)
    materialised: dict[str, CalendarEntry] = field(default_factory=dict)  # future rows written

    # --- loading ------------------------------------------------------------------------------------
    def load(self, facts: list[Fact]) -> None:
        if self.fresh:
            return
        keys = {(f.source, f.source_ref) for f in facts if f.source_ref}
        for kind in ("cron", "heartbeat"):
            refs = [ref for source, ref in keys if source == kind]
            for start in range(0, len(refs), 1000):
                for row in CalendarSource.objects.filter(
                    source=kind, source_ref__in=refs[start : start + 1000]
                ):
                    self.sources[(row.source, row.source_ref)] = row
        event_ids = [_occurrence_id(f) for f in facts if f.event_type in RUN_EVENTS]
        event_ids = [eid for eid in set(event_ids) if eid]
        for start in range(0, len(event_ids), 1000):
            for entry in CalendarEntry.objects.filter(pk__in=event_ids[start : start + 1000]):
                self.entries[entry.event_id] = entry
        entry_ids = list(
            {(f.payload.get("entry") or {}).get("entry_id") for f in facts if f.event_type in STASIS_EVENTS}
            - {None}
        )
        for stasis in CalendarStasisEntry.objects.filter(pk__in=entry_ids):
            self.stasis[stasis.entry_id] = stasis

    def source(self, fact: Fact) -> CalendarSource:
        key = (fact.source, fact.source_ref)
        row = self.sources.get(key)
        if row is None:
            # -1: any definition, even a rebuild's at seq 0, is newer than none.
            row = CalendarSource(
                source=fact.source, source_ref=fact.source_ref, definition_seq=-1, info_seq=-1
            )
            self.sources[key] = row
            self.dirty_sources.add(key)
        return row

    # --- applying -----------------------------------------------------------------------------------
    def apply(self, fact: Fact) -> None:
        if fact.event_type in DEFINITION_EVENTS:
            self._definition(fact)
        elif fact.event_type in RUN_EVENTS:
            self._run(fact)
        elif fact.event_type in STASIS_EVENTS:
            self._stasis(fact)
        if fact.source == "heartbeat" and fact.source_ref:
            self.source(fact)
            # A session's next due time moves with every heartbeat and wake, in bookkeeping saves that
            # carry no event: read it from the session row once per batch.
            self.due_refresh.add(fact.source_ref)
            self.rematerialise.setdefault(("heartbeat", fact.source_ref), fact.seq)

    def _definition(self, fact: Fact) -> None:
        src = self.source(fact)
        if fact.seq <= src.definition_seq or (src.source == "cron" and src.deleted):
            return
        if fact.source == "cron":
            deleted = fact.event_type == "cron_job_deleted"
            src_mod.apply_job_snapshot(src, fact.payload.get("job") or {}, deleted)
        else:
            src_mod.apply_session_snapshot(src, fact.payload.get("session") or {}, fact.status == "deleted")
        src.definition_seq = src.info_seq = fact.seq
        key = (src.source, src.source_ref)
        self.dirty_sources.add(key)
        self.redefined.add(key)
        self.rematerialise[key] = fact.seq

    def _run(self, fact: Fact) -> None:
        run = fact.payload.get("run") or {}
        event_id = _occurrence_id(fact)
        status = CALENDAR_STATUS.get(run.get("status") or "")
        if not event_id or status is None:
            return
        src = self.source(fact)
        if src.definition_seq < 0 and fact.seq > src.info_seq:
            # Only runs known so far (a job deleted before the log's retention): describe it from them.
            src.owner_id = run.get("owner_id") or ""
            src.session_id = run.get("session_id") or (fact.source_ref if fact.source == "heartbeat" else "")
            src.title = run.get("title") or (
                f"heartbeat {fact.source_ref}" if fact.source == "heartbeat" else ""
            )
            src.info_seq = fact.seq
            self.dirty_sources.add((src.source, src.source_ref))
        created = run.get("created_at") or run.get("started_at") or run.get("finished_at")
        rank = run_rank(run.get("attempt") or 1, created, run.get("run_id") or "")
        row = self.entries.get(event_id)
        if row is not None and row.run_id:
            if row.run_id == rank[2]:
                stored_terminal, incoming_terminal = row.status != "running", status != "running"
                if stored_terminal and not incoming_terminal:
                    return  # a terminal state always supersedes `started`
                if stored_terminal == incoming_terminal and fact.seq <= row.run_seq:
                    return  # an older update never overwrites a newer one
            elif rank <= run_rank(row.run_attempt, _epoch(row.run_created_at), row.run_id):
                return
        if row is None:
            row = CalendarEntry(event_id=event_id, source=fact.source, source_ref=fact.source_ref)
            self.entries[event_id] = row
        row.calendar_source = src
        row.owner_id = run.get("owner_id") or src.owner_id
        row.scheduled_at = _nominal(run, event_id)
        row.status, row.run_status, row.run_id = status, run.get("status") or "", rank[2]
        row.run_attempt, row.run_created_at, row.run_seq = rank[0], epoch_to_datetime(created), fact.seq
        self.dirty_entries.add(event_id)
        self.touched.setdefault(fact.seq, set()).add(event_id)

    def _stasis(self, fact: Fact) -> None:
        entry = fact.payload.get("entry") or {}
        entry_id = entry.get("entry_id")
        if not entry_id:
            return
        row = self.stasis.get(entry_id)
        if row is not None and (
            fact.seq <= row.seq or (row.status != "pending" and entry.get("status") == "pending")
        ):
            return
        if row is None:
            row = self.stasis[entry_id] = CalendarStasisEntry(entry_id=entry_id)
        row.event_id = entry.get("event_id") or ""
        row.owner_id = entry.get("owner_id") or ""
        row.status = entry.get("status") or ""
        row.detected_at = src_mod.parse_iso(entry.get("detected_at_utc"))
        row.seq, row.snapshot = fact.seq, entry
        self.dirty_stasis.add(entry_id)
        self.touched.setdefault(fact.seq, set()).add(row.event_id)

    # --- writing ------------------------------------------------------------------------------------
    def flush(self) -> None:
        self._refresh_due_times()
        changed = [self.sources[key] for key in self.dirty_sources | set(self.rematerialise)]
        # New sources first: the entries below refer to their ids (returned by the bulk insert).
        created = [src for src in changed if src.pk is None]
        CalendarSource.objects.bulk_create(created)
        outcome = src_mod.materialise([self.sources[key] for key in self.rematerialise], self.now)
        for key, seq in self.rematerialise.items():
            done = outcome.get(self.sources[key].pk)
            if done:
                self.touched.setdefault(seq, set()).update(row.event_id for row in done.changed)
                self.materialised.update((row.event_id, row) for row in done.changed)
                self.removed.setdefault(seq, set()).update(done.removed)
        inserted = {id(src) for src in created}
        CalendarSource.objects.bulk_update(
            [src for src in changed if id(src) not in inserted], SOURCE_FIELDS, batch_size=500
        )
        # Sources inserted above changed since only where materialise() set their horizon and density:
        # one plain UPDATE per pair of values instead of a CASE per field and row.
        by_values: dict[tuple, list[int]] = {}
        for src in created:
            by_values.setdefault((src.materialised_until, src.dense), []).append(src.pk)
        for (until, dense), pks in by_values.items():
            CalendarSource.objects.filter(pk__in=pks).update(materialised_until=until, dense=dense)
        if self.dirty_stasis:
            # Before the bodies below: a missed occurrence offers the stasis actions while its entry pends.
            CalendarStasisEntry.objects.bulk_create(
                [self.stasis[entry_id] for entry_id in self.dirty_stasis],
                update_conflicts=True,
                unique_fields=["entry_id"],
                update_fields=["event_id", "owner_id", "status", "detected_at", "seq", "snapshot"],
            )
        rows = [self.entries[event_id] for event_id in self.dirty_entries]
        for row in rows:
            row.calendar_source_id = row.calendar_source.pk
        src_mod.render_bodies(rows, {src.pk: src for src in self.sources.values()})
        src_mod.save_entries(rows)
        if not self.fresh:
            stasis_ids = {self.stasis[entry_id].event_id for entry_id in self.dirty_stasis}
            # A source new in this batch has no rows but those rendered above.
            redefined = {self.sources[key].pk for key in self.redefined} - {src.pk for src in created}
            src_mod.rerender(stasis_ids, redefined, set(self.dirty_entries) | set(self.materialised))

    def _refresh_due_times(self) -> None:
        if not self.due_refresh:
            return
        due = dict(
            HeartbeatSession.objects.filter(session_id__in=self.due_refresh).values_list(
                "session_id", "next_due_at"
            )
        )
        for session_id in self.due_refresh:
            key = ("heartbeat", session_id)
            src = self.sources.get(key)
            if src is None:
                continue
            before = src_mod.recurrence_of(src)
            src.next_due_at = due.get(session_id) if src.enabled and not src.deleted else None
            self.dirty_sources.add(key)
            if key not in self.redefined and src_mod.continues(before, src_mod.recurrence_of(src)):
                # The usual heartbeat: it ran on time and its next due time is the next occurrence
                # already materialised, so the rows stand (past ones are simply no longer shown).
                self.rematerialise.pop(key, None)


SOURCE_FIELDS = [
    "owner_id", "session_id", "channel", "title", "description", "category", "timezone", "kind",
    "cron_expr", "every_seconds", "run_at", "anchor_at", "active_hours", "next_due_at", "enabled",
    "deleted", "definition_seq", "info_seq", "materialised_until", "dense",
]  # fmt: skip


def _occurrence_id(fact: Fact) -> str | None:
    return (fact.payload.get("run") or {}).get("occurrence_id")


def _nominal(run: dict[str, Any], event_id: str) -> datetime:
    moment = src_mod.parse_iso(run.get("scheduled_at_utc")) or epoch_to_datetime(run.get("created_at"))
    return moment or datetime.fromtimestamp(float(event_id.rsplit("|", 1)[1]), UTC)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None
