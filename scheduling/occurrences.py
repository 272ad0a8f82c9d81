"""A job's occurrences: the pure schedule functions applied to a job row. Callers pass the instants."""

from __future__ import annotations

from datetime import datetime

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
