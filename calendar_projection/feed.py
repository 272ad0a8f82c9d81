"""The projection path of the calendar feed: one indexed range read of `CalendarEntry.scheduled_at`.

On PostgreSQL the database also groups dense jobs and renders the events as JSON (`json_agg`), because
building ~20,000 dicts in Python and encoding them cost more than the whole query. The portable path
(SQLite) reads the same rows and renders them with `shapes`, the code the scan path uses; the two SQL
and Python renderings give the same keys and values (tests compare them on PostgreSQL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import Q

from calendar_projection.models import CalendarEntry, CalendarSource, CalendarStasisEntry
from calendar_projection.shapes import Occurrence, always_running_item, assemble
from calendar_projection.sources import dense_future, future_count, info_of
from calendar_projection.window import Window


@dataclass
class FeedRows:
    events_json: str  # a JSON array of events, ordered by (scheduled_at, event_id)
    always_running: list[dict[str, Any]]
    stasis_queue: list[dict[str, Any]]


def projection_feed(
    window: Window, source: str, owner_id: str | None, now: datetime, max_per_job: int
) -> FeedRows:
    stasis_queue = pending_stasis(owner_id, source)
    if connection.vendor == "postgresql":
        try:
            events_json, dense = _postgres(window, source, owner_id, now, max_per_job)
            return FeedRows(events_json, _full_counts(dense, window, now, max_per_job), stasis_queue)
        except DatabaseError:
            # A zone Python knows and the database's tzdata does not: render in Python instead.
            pass
    rows = list(visible_rows(window, source, owner_id, now).select_related("calendar_source"))
    rows += _dense_rows(window, source, owner_id, now)
    occurrences = [(_occurrence(row), info_of(row.calendar_source)) for row in rows]
    events, dense = assemble(
        occurrences, window.tz, window.tz_name, {e["event_id"] for e in stasis_queue}, max_per_job
    )
    return FeedRows(json.dumps(events), _full_counts(dense, window, now, max_per_job), stasis_queue)


def _full_counts(
    items: list[dict[str, Any]], window: Window, now: datetime, max_per_job: int
) -> list[dict[str, Any]]:
    """A dense source's future was expanded only to max_per_job + 1 occurrences (enough to know it is
    always running): put its whole future in the window into `count`."""
    refs = {(item["source"], item["source_ref"]) for item in items}
    if not refs:
        return items
    dense = {
        (src.source, src.source_ref): src
        for src in CalendarSource.objects.filter(dense=True, deleted=False)
        if (src.source, src.source_ref) in refs
    }
    for item in items:
        src = dense.get((item["source"], item["source_ref"]))
        if src is not None:
            full = future_count(src, window.start, window.end, now)
            item["count"] += full - min(full, max_per_job + 1)  # the feed expanded min(full, max + 1)
    return items


def visible_rows(window: Window, source: str, owner_id: str | None, now: datetime) -> Any:
    rows = CalendarEntry.objects.filter(scheduled_at__gte=window.start, scheduled_at__lt=window.end)
    # A future occurrence whose time has passed without a run is not shown: the scheduler is about to
    # claim it or record it as missed (see expansion.py).
    rows = rows.filter(~Q(run_id="") | Q(scheduled_at__gte=now))
    if source != "all":
        rows = rows.filter(source=source)
    if owner_id is not None:
        rows = rows.filter(owner_id=owner_id)
    return rows


def dense_sources(source: str, owner_id: str | None) -> Any:
    """The live dense sources (sources.is_dense) a feed with these filters shows."""
    sources = CalendarSource.objects.filter(dense=True, deleted=False)
    if source != "all":
        sources = sources.filter(source=source)
    if owner_id is not None:
        sources = sources.filter(owner_id=owner_id)
    return sources


def _dense_rows(window: Window, source: str, owner_id: str | None, now: datetime) -> list[CalendarEntry]:
    """The future of dense sources, which is not stored (sources.is_dense): expanded for this window,
    bounded per source, and shaped like stored rows so both renderings treat them alike."""
    rows: list[CalendarEntry] = []
    for src in dense_sources(source, owner_id):
        for row in dense_future(src, window.start, window.end, now):
            row.calendar_source = src
            rows.append(row)
    return rows


def _weighted(rows: list[CalendarEntry], max_per_job: int) -> tuple[list[CalendarEntry], list[int]]:
    """A dense source with more future occurrences in the window than a window lists is always running
    there: its first and last occurrence, weighted to count for all, are all the SQL needs (not 401 rows)."""
    by_source: dict[int, list[CalendarEntry]] = {}
    for row in rows:
        by_source.setdefault(row.calendar_source_id, []).append(row)
    kept: list[CalendarEntry] = []
    weights: list[int] = []
    for group in by_source.values():
        if len(group) > max_per_job:
            kept += [group[0], group[-1]]
            weights += [len(group) - 1, 1]
        else:
            kept += group
            weights += [1] * len(group)
    return kept, weights


def _occurrence(row: CalendarEntry) -> Occurrence:
    return Occurrence(row.event_id, row.scheduled_at, row.status, row.owner_id, row.run_id, row.run_status)


def pending_stasis(owner_id: str | None, source: str) -> list[dict[str, Any]]:
    rows = CalendarStasisEntry.objects.filter(status="pending")
    if owner_id is not None:
        rows = rows.filter(owner_id=owner_id)
    snapshots = [row.snapshot for row in rows.order_by("-detected_at", "entry_id")]
    return [entry for entry in snapshots if source == "all" or entry.get("source") == source]


_ISO = """to_char({t}, 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN date_part('microseconds', {t})::bigint %% 1000000 = 0 THEN '' ELSE to_char({t}, '.US') END"""
_OFFSET = (
    "extract(epoch from (v.scheduled_at AT TIME ZONE %(tz)s) - (v.scheduled_at AT TIME ZONE 'UTC'))::int"
)

_FEED_SQL = """
WITH visible AS (
    SELECT e.event_id, e.calendar_source_id AS sid, e.scheduled_at, e.status, e.body, 1 AS w
    FROM {entry} e
    WHERE e.scheduled_at >= %(start)s AND e.scheduled_at < %(end)s
      AND (e.run_id <> '' OR e.scheduled_at >= %(now)s) {filters}
    UNION ALL
    SELECT * FROM unnest(%(x_ids)s::text[], %(x_sids)s::bigint[], %(x_at)s::timestamptz[],
                         %(x_status)s::text[], %(x_body)s::text[], %(x_w)s::int[])
), dense AS (
    SELECT sid, SUM(w) AS n, MIN(scheduled_at) AS first_at, MAX(scheduled_at) AS last_at,
           bool_or(status = 'running') AS any_running
    FROM visible GROUP BY sid HAVING SUM(w) > %(max)s
), shown AS (
    SELECT v.*, ({offset}) AS off FROM visible v WHERE v.sid NOT IN (SELECT sid FROM dense)
)
SELECT
    '[' || COALESCE(string_agg(
        left(v.body, -1) || ',"scheduled_at_local":"' || {iso_local}
            || CASE WHEN v.off < 0 THEN '-' ELSE '+' END || lpad((abs(v.off) / 3600)::text, 2, '0')
            || ':' || lpad((abs(v.off) %% 3600 / 60)::text, 2, '0')
            || '","timezone_display":' || %(tz_json)s || '}}',
        ',' ORDER BY v.scheduled_at, v.event_id), '') || ']',
    (SELECT COALESCE(json_agg(json_build_object('sid', sid, 'n', n, 'first', extract(epoch from first_at),
        'last', extract(epoch from last_at), 'running', any_running))::text, '[]') FROM dense)
FROM shown v
"""


def _postgres(
    window: Window, source: str, owner_id: str | None, now: datetime, max_per_job: int
) -> tuple[str, list[dict[str, Any]]]:
    filters = ""
    params: dict[str, Any] = {
        "start": window.start, "end": window.end, "now": now, "max": max_per_job,
        "tz": window.tz_name, "tz_json": json.dumps(window.tz_name),
    }  # fmt: skip
    if source != "all":
        filters += " AND e.source = %(source)s"
        params["source"] = source
    if owner_id is not None:
        filters += " AND e.owner_id = %(owner)s"
        params["owner"] = owner_id
    extra, weights = _weighted(_dense_rows(window, source, owner_id, now), max_per_job)
    params.update(
        x_ids=[row.event_id for row in extra], x_sids=[row.calendar_source_id for row in extra],
        x_at=[row.scheduled_at for row in extra], x_status=[row.status for row in extra],
        x_body=[row.body for row in extra], x_w=weights,
    )  # fmt: skip
    sql = _FEED_SQL.format(
        entry=CalendarEntry._meta.db_table,
        filters=filters, offset=_OFFSET,
        iso_local=_ISO.format(t="(v.scheduled_at AT TIME ZONE %(tz)s)"),
    )  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        # json_agg(... ORDER BY) sorts the rendered events: ~10 MB for a busy week, which spills to disk
        # at the default work_mem (4 MB) and then costs more than everything else in the request.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(sql, params)
        events_json, dense_json = cursor.fetchone()
    return events_json, _dense_items(json.loads(dense_json), window)


def _dense_items(groups: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
    sources = CalendarSource.objects.in_bulk([group["sid"] for group in groups])
    items = [
        always_running_item(
            info_of(sources[group["sid"]]),
            group["n"],
            datetime.fromtimestamp(float(group["first"]), UTC),
            datetime.fromtimestamp(float(group["last"]), UTC),
            group["running"],
            window.tz,
            window.tz_name,
        )  # fmt: skip
        for group in groups
    ]
    return sorted(items, key=lambda item: (item["source"], item["source_ref"]))
