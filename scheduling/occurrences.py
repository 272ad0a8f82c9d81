"""A job's occurrences: the pure schedule functions applied to a job row. Callers pass the instants."""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduling import schedule
from scheduling.models import CronJob


def next_occurrence_of(job: CronJob, after: datetime) -> datetime | None:
    """The job's first nominal occurrence strictly after `after`; None when it has none left."""
    if not job.enabled:
        return None
    return schedule.next_occurrence(
        job.schedule_kind,
        cron_expr=job.cron_expr or None,
        every_seconds=job.every_seconds,
        run_at=job.run_at,
        tz=schedule.parse_timezone(job.timezone),
        anchor=job.anchor_at,
        after=after,
    )


def occurrences_of(job: CronJob, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """Nominal occurrences in (after, until], at most `limit`."""
    return schedule.occurrences(
        job.schedule_kind,
        cron_expr=job.cron_expr or None,
        every_seconds=job.every_seconds,
        run_at=job.run_at,
        tz=schedule.parse_timezone(job.timezone),
        anchor=job.anchor_at,
        after=after,
        until=until,
        limit=limit,
    )


def newest_occurrences(
    job: CronJob, first: datetime, cutoff: datetime, keep: int
) -> tuple[list[datetime], int]:
    """The newest `keep` occurrences in [first, cutoff] and how many older ones there are (estimated for
    long cron gaps). Bounded work however long the gap: a month of minutely misses costs a few windows,
    not 40,000 iterations."""
    if first > cutoff or keep <= 0:
        return [], 0
    start = first - timedelta(microseconds=1)
    span = timedelta(hours=1)
    while True:
        window_start = max(start, cutoff - span)
        found = occurrences_of(job, window_start, cutoff, limit=keep * 16 + 16)
        if len(found) > keep or window_start == start:
            break
        span *= 4
    newest = found[-keep:]
    if window_start == start:
        return newest, len(found) - len(newest)
    gap = (found[-1] - found[0]) / max(1, len(found) - 1)
    before_window = int((window_start - first) / gap) + 1 if gap.total_seconds() > 0 else 0
    return newest, len(found) - len(newest) + before_window
