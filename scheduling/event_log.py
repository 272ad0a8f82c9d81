"""Appending to and reading the sequenced lifecycle event log (contract §4).

Ordering argument: an append takes an EXCLUSIVE lock on the event table and holds it until its
transaction commits, then reads MAX(seq) and writes seq+1. Two appending transactions therefore commit in
the order they were given their numbers, so `seq` is gapless and in commit order, and a reader that pages
with `seq > since_seq` can never pass over a number that is still uncommitted. Plain SELECTs take ACCESS
SHARE, which EXCLUSIVE does not block, so readers never wait. On SQLite, IMMEDIATE transactions already
serialise every writer at BEGIN, which gives the same guarantee.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Max, Min

from scheduling import clock, doorbell, lifecycle_log, metrics
from scheduling.models import LifecycleEvent

NOTIFY_CHANNEL = "scheduling_events"
# Trim old events once every this many appends (cheap amortised retention).
_TRIM_EVERY = 200
# Terminal run events: their status is a run outcome (the run-outcome counters of /metrics).
RUN_OUTCOME_EVENTS = frozenset(
    {"cron_run_completed", "cron_run_failed", "cron_run_missed", "heartbeat_completed", "heartbeat_failed",
     "heartbeat_skipped", "heartbeat_missed"}
)  # fmt: skip


@dataclass
class EventDraft:
    event_type: str
    source: str
    source_ref: str
    owner_id: str = ""
    session_id: str = ""
    channel: str = ""
    status: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None


def append_event(draft: EventDraft) -> LifecycleEvent:
    return append_events([draft])[0]


def append_events(drafts: list[EventDraft]) -> list[LifecycleEvent]:
    """Append events inside the caller's transaction (opening one if there is none)."""
    if not drafts:
        return []
    now = clock.now()
    rows = [
        LifecycleEvent(
            event_type=d.event_type,
            source=d.source,
            source_ref=d.source_ref,
            owner_id=d.owner_id or "",
            session_id=d.session_id or "",
            channel=d.channel or "",
            occurred_at=d.occurred_at or now,
            status=d.status or "",
            payload=d.payload,
        )
        for d in drafts
    ]
    # savepoint=False: an append is part of the caller's unit of work, never rolled back on its own.
    with transaction.atomic(savepoint=False):
        last_seq = _insert_postgres(rows) if connection.vendor == "postgresql" else _insert_portable(rows)
        if last_seq // _TRIM_EVERY != (last_seq - len(rows)) // _TRIM_EVERY:
            _trim(last_seq)
        transaction.on_commit(doorbell.ring)
        # Counted on commit, so a rolled-back append counts nothing: the counts are exactly the events
        # that exist (a log trimmed to its retention could not give them), batched into one increment.
        counts = _event_counts(rows)
        transaction.on_commit(lambda: metrics.count_many(counts))
        lifecycle_log.log_after_commit(drafts)
    return rows


def _event_counts(rows: list[LifecycleEvent]) -> Counter:
    counts: Counter = Counter({"event_emissions_total": len(rows)})
    for row in rows:
        counts[f"event_counts.{row.source}.{row.event_type}"] += 1
        counts[f"{row.source}_events_total"] += 1
        if row.event_type in RUN_OUTCOME_EVENTS:
            counts[f"run_outcomes.{row.source}.{row.status}"] += 1
    return counts


def _sequencing_sql(table: str) -> tuple[str, str]:
    """(statements run first, query yielding the last seq). The integration tests swap this for a plain
    sequence to show the race that the lock prevents."""
    timeout = int(settings.UA_EVENT_LOCK_TIMEOUT_MS)
    # lock_timeout: a stuck appender must fail this transaction, not hang every writer forever.
    prefix = f"SET LOCAL lock_timeout = '{timeout}ms'; LOCK TABLE {table} IN EXCLUSIVE MODE;"
    return prefix, f"SELECT COALESCE(MAX(seq), 0) AS last FROM {table}"


_INSERT_SQL = """
WITH head AS ({head}),
inserted AS (
    INSERT INTO {table}
        (seq, event_type, source, source_ref, owner_id, session_id, channel, occurred_at, status, payload)
    SELECT head.last + r.n, r.event_type, r.source, r.source_ref, r.owner_id, r.session_id, r.channel,
           r.occurred_at, r.status, r.payload
    FROM head, jsonb_to_recordset(%s::jsonb) AS r(
        n bigint, event_type text, source text, source_ref text, owner_id text, session_id text,
        channel text, occurred_at timestamptz, status text, payload jsonb)
    RETURNING seq
)
SELECT MAX(seq), pg_notify('{channel}', '') FROM inserted
"""


def _insert_postgres(rows: list[LifecycleEvent]) -> int:
    """Lock, number, insert and notify in one round trip. The lock is held until commit, so everything
    that can happen before it (building the JSON) does, and nothing waits on the network in between.
    NOTIFY is transactional: delivered only on commit, and repeats within a transaction collapse."""
    table = LifecycleEvent._meta.db_table
    records = [
        {
            "n": offset,
            "event_type": row.event_type,
            "source": row.source,
            "source_ref": row.source_ref,
            "owner_id": row.owner_id,
            "session_id": row.session_id,
            "channel": row.channel,
            "occurred_at": row.occurred_at.isoformat(),
            "status": row.status,
            "payload": row.payload,
        }
        for offset, row in enumerate(rows, start=1)
    ]
    body = json.dumps(records, cls=DjangoJSONEncoder)
    prefix, head = _sequencing_sql(table)
    sql = prefix + _INSERT_SQL.format(head=head, table=table, channel=NOTIFY_CHANNEL)
    with connection.cursor() as cursor:
        cursor.execute(sql, [body])
        while cursor.description is None and cursor.nextset():
            pass
        last_seq = cursor.fetchone()[0]
    for offset, row in enumerate(rows, start=1):
        row.seq = last_seq - len(rows) + offset
    return last_seq


def _insert_portable(rows: list[LifecycleEvent]) -> int:
    """SQLite: IMMEDIATE transactions already hold the database's single write lock from BEGIN."""
    last_seq = LifecycleEvent.objects.aggregate(m=Max("seq"))["m"] or 0
    for offset, row in enumerate(rows, start=1):
        row.seq = last_seq + offset
    LifecycleEvent.objects.bulk_create(rows)
    return last_seq + len(rows)


def _trim(last_seq: int) -> None:
    keep = max(1, int(settings.UA_SCHED_EVENT_BUS_MAX))
    LifecycleEvent.objects.filter(seq__lte=last_seq - keep).delete()


def announce_change() -> None:
    """Wake listeners when the current transaction commits, for changes that carry no event (a queued
    run, a heartbeat made due): the scheduler must look again. Appends notify by themselves."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # NOTIFY is transactional: delivered only if this transaction commits.
            cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    transaction.on_commit(doorbell.ring)


@dataclass
class LogBounds:
    oldest_seq: int
    last_seq: int


def bounds() -> LogBounds:
    agg = LifecycleEvent.objects.aggregate(lo=Min("seq"), hi=Max("seq"))
    last = agg["hi"] or 0
    return LogBounds(oldest_seq=agg["lo"] or last + 1, last_seq=last)


def read_since(since_seq: int, limit: int, owner_id: str | None = None) -> list[LifecycleEvent]:
    """Events with seq > since_seq, oldest first; `owner_id` filters to one owner's events."""
    queryset = LifecycleEvent.objects.filter(seq__gt=since_seq)
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    return list(queryset.order_by("seq")[:limit])


def envelope(event: LifecycleEvent) -> dict[str, Any]:
    """The contract's event envelope (§4)."""
    return {
        "seq": event.seq,
        "event_type": event.event_type,
        "source": event.source,
        "source_ref": event.source_ref,
        "owner_id": event.owner_id,
        "session_id": event.session_id,
        "channel": event.channel,
        "occurred_at_utc": clock.iso(event.occurred_at),
        "status": event.status,
        "payload": event.payload,
    }
