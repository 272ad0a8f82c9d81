"""Pages of the event log as ready-to-send JSON, for replay and push.

On PostgreSQL the page, the log bounds and the cursor come from one statement in one snapshot, and the
database renders the envelopes itself (`json_agg`): building 500 model instances and re-encoding their
payloads in Python cost more than everything else a replay request does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection

from scheduling import event_log
from scheduling.models import LifecycleEvent


@dataclass
class EventPage:
    events_json: str  # a JSON array of envelopes (contract §4), oldest first
    count: int
    last_seq_in_page: int | None
    has_more: bool
    oldest_seq: int
    log_last_seq: int


# occurred_at_utc is written like clock.iso(): microseconds only when there are any, then "Z".
_ENVELOPE_SQL = """json_build_object(
    'seq', seq, 'event_type', event_type, 'source', source, 'source_ref', source_ref,
    'owner_id', owner_id, 'session_id', session_id, 'channel', channel,
    'occurred_at_utc', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN mod(date_part('microseconds', occurred_at)::bigint, 1000000) = 0 THEN ''
                ELSE to_char(occurred_at AT TIME ZONE 'UTC', '.US') END || 'Z',
    'status', status, 'payload', payload)"""

_PAGE_SQL = """
WITH page AS (
    SELECT * FROM {table} WHERE seq > %s {owner_filter} ORDER BY seq LIMIT %s
), shown AS (
    SELECT * FROM page ORDER BY seq LIMIT %s
)
SELECT
    (SELECT MIN(seq) FROM {table}),
    (SELECT MAX(seq) FROM {table}),
    (SELECT COUNT(*) FROM page),
    (SELECT COALESCE(json_agg({envelope} ORDER BY seq)::text, '[]') FROM shown),
    (SELECT MAX(seq) FROM shown)
"""


def read_page(since_seq: int, limit: int, owner_id: str | None = None) -> EventPage:
    """Up to `limit` events with seq > since_seq (one owner's only, if given), plus the log's bounds."""
    if connection.vendor != "postgresql":
        return _read_page_portable(since_seq, limit, owner_id)
    table = LifecycleEvent._meta.db_table
    sql = _PAGE_SQL.format(
        table=table, envelope=_ENVELOPE_SQL, owner_filter="AND owner_id = %s" if owner_id is not None else ""
    )
    params: list[Any] = [since_seq, *([owner_id] if owner_id is not None else []), limit + 1, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        oldest, last, fetched, events_json, last_in_page = cursor.fetchone()
    return EventPage(
        events_json=events_json,
        count=min(fetched, limit),
        last_seq_in_page=last_in_page,
        has_more=fetched > limit,
        oldest_seq=oldest if oldest is not None else (last or 0) + 1,
        log_last_seq=last or 0,
    )


def _read_page_portable(since_seq: int, limit: int, owner_id: str | None) -> EventPage:
    """Three statements, no shared snapshot: the last seq is read before the page and the oldest after
    it, so a trim that runs in between shows up as a 410 instead of a silently shortened page."""
    last_before = event_log.bounds().last_seq
    events = event_log.read_since(since_seq, limit + 1, owner_id)
    oldest_after = event_log.bounds().oldest_seq
    shown = events[:limit]
    return EventPage(
        events_json=json.dumps([event_log.envelope(event) for event in shown]),
        count=len(shown),
        last_seq_in_page=shown[-1].seq if shown else None,
        has_more=len(events) > limit,
        oldest_seq=oldest_after,
        log_last_seq=max(last_before, shown[-1].seq if shown else 0),
    )
