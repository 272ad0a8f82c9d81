"""Appending to and reading the sequenced lifecycle event log (contract §4).

Ordering argument: an append takes an EXCLUSIVE lock on the event table and holds it until its
transaction commits, then reads MAX(seq) and writes seq+1. Two appending transactions therefore commit in
the order they were given their numbers, so `seq` is gapless and in commit order, and a reader that pages
with `seq > since_seq` can never pass over a number that is still uncommitted. Plain SELECTs take ACCESS
SHARE, which EXCLUSIVE does not block, so readers never wait. On SQLite, IMMEDIATE transactions already
serialise every writer at BEGIN, which gives the same guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min

from scheduling import clock, doorbell
from scheduling.models import LifecycleEvent

NOTIFY_CHANNEL = "scheduling_events"
# Trim old events once every this many appends (cheap amortised retention).
_TRIM_EVERY = 200


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
    # savepoint=False: an append is part of the caller's unit of work, never rolled back on its own.
    with transaction.atomic(savepoint=False):
        last_seq = _lock_and_read_last_seq()
        now = clock.now()
        rows = [
            LifecycleEvent(
                seq=last_seq + offset,
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
            for offset, d in enumerate(drafts, start=1)
        ]
        LifecycleEvent.objects.bulk_create(rows)
        new_last = rows[-1].seq
        if new_last // _TRIM_EVERY != last_seq // _TRIM_EVERY:
            _trim(new_last)
        announce_change()
    return rows


def _lock_and_read_last_seq() -> int:
    if connection.vendor == "postgresql":
        table = LifecycleEvent._meta.db_table
        with connection.cursor() as cursor:
            # lock_timeout: a stuck appender must fail this transaction, not hang every writer forever.
            cursor.execute(
                f"SET LOCAL lock_timeout = '{int(settings.UA_EVENT_LOCK_TIMEOUT_MS)}ms'; "
                f"LOCK TABLE {table} IN EXCLUSIVE MODE"
            )
    return LifecycleEvent.objects.aggregate(m=Max("seq"))["m"] or 0


def _trim(last_seq: int) -> None:
    keep = max(1, int(settings.UA_SCHED_EVENT_BUS_MAX))
    LifecycleEvent.objects.filter(seq__lte=last_seq - keep).delete()


def announce_change() -> None:
    """Wake listeners when the current transaction commits (also for changes that carry no event, such
    as a queued run or a rescheduled heartbeat: the scheduler must look again)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # NOTIFY is transactional: delivered only if this transaction commits, and identical
            # notifications within one transaction collapse into one.
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
