"""occurrences() walks a cron expression once when the zone keeps one UTC offset over the stretch; it must
give exactly what the one-occurrence-at-a-time walk (the scheduler's cron_next rules) gives, near DST
transitions and far from them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from scheduling import schedule

EXPRESSIONS = ["0 * * * *", "*/7 * * * *", "30 2 * * *", "0 9 * * 1-5", "15 1,2,3 * * *", "0 0 1 * *",
               "59 23 * * 0", "*/20 0-3 * * *", "0 12 29 2 *"]  # fmt: skip
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",
]
STARTS = [datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 10, 20, 13, 17, 5, 500, tzinfo=UTC),
          datetime(2026, 6, 1, tzinfo=UTC), datetime(2027, 1, 10, 23, 59, 59, tzinfo=UTC)]  # fmt: skip


def step_by_step(expr: str, tz, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """The scheduler's own rule, one occurrence at a time: cron_next from the previous fire time."""
    found: list[datetime] = []
    while len(found) < limit:
        after = schedule.cron_next(expr, tz, after)
        if after > until:
            break
        found.append(after)
    return found


@pytest.mark.parametrize("zone", ZONES)
def test_the_one_walk_equals_the_step_by_step_walk(zone):
    tz = schedule.parse_timezone(zone)
    rng = random.Random(zone)
    for expr in EXPRESSIONS:
        for start in STARTS:
            after = start + timedelta(seconds=rng.randrange(0, 40 * 86400))
            until = after + timedelta(days=rng.choice([1, 7, 15]))
            limit = rng.choice([5, 400, 25_000])
            args = dict(cron_expr=expr, every_seconds=None, run_at=None, tz=tz, anchor=after, after=after,
                        until=until, limit=limit)  # fmt: skip
            fast = schedule.occurrences("cron", **args)
            slow = step_by_step(expr, tz, after, until, limit)
            assert fast == slow, (expr, zone, after, until, limit)


def test_a_stretch_with_a_transition_takes_the_step_by_step_walk():
    tz = schedule.parse_timezone("Europe/Berlin")
    spring = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert schedule._steady_offset(tz, spring - timedelta(days=1), spring + timedelta(days=1)) is None
    assert schedule._steady_offset(tz, spring + timedelta(days=1), spring + timedelta(days=20)) == timedelta(
        hours=2
    )


def test_the_every_lattice_equals_stepping_every_next():
    """Interval jobs are expanded as one lattice: the same moments every_next() steps to, bounds included."""
    rng = random.Random(7)
    for _ in range(300):
        every = rng.choice([60, 61, 3600, 5400, 86400, 7 * 86400 + 13])
        anchor = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 90 * 86400))
        after = anchor + timedelta(
            seconds=rng.randrange(-5 * every, 60 * 86400), microseconds=rng.choice([0, 7])
        )
        until = after + timedelta(seconds=rng.choice([0, every, every * 3, 15 * 86400]))
        limit = rng.choice([1, 5, 400, 25_000])
        args = dict(cron_expr=None, every_seconds=every, run_at=None, tz=UTC, anchor=anchor, after=after,
                    until=until, limit=limit)  # fmt: skip
        stepped, cursor = [], after
        while len(stepped) < limit:
            cursor = schedule.every_next(every, anchor, cursor)
            if cursor > until:
                break
            stepped.append(cursor)
        assert schedule.occurrences("every", **args) == stepped, (every, anchor, after, until, limit)
