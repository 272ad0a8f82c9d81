"""Unit tests for scheduling.schedule: parsing and DST-correct occurrence arithmetic."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduling.schedule import (
    ScheduleError,
    cron_next,
    every_next,
    next_occurrence,
    occurrences,
    parse_every,
    parse_run_at,
    parse_timezone,
    validate_cron,
)

CHICAGO = ZoneInfo("America/Chicago")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # 30-minute DST shifts
UTC_ZONE = ZoneInfo("UTC")
# Saturday 2026-03-07 09:00 CST, the day before Chicago springs forward.
NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold).astimezone(UTC)


def cron_between(expr: str, tz: ZoneInfo, after: datetime, until: datetime, limit: int = 1000) -> list:
    return occurrences(
        "cron", cron_expr=expr, every_seconds=None, run_at=None, tz=tz,
        anchor=after, after=after, until=until, limit=limit,
    )  # fmt: skip


def local_day(tz: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """(after, until) covering exactly one local calendar day: [00:00, next 00:00)."""
    start = local(tz, day.year, day.month, day.day)
    nxt = day + timedelta(days=1)
    end = local(tz, nxt.year, nxt.month, nxt.day)
    return start - timedelta(microseconds=1), end - timedelta(microseconds=1)


# --- ScheduleError / parse_timezone ---------------------------------------------------------


def test_schedule_error_is_a_value_error_carrying_field_and_detail():
    error = ScheduleError("every", "must be positive")
    assert isinstance(error, ValueError)
    assert (error.field, error.detail) == ("every", "must be positive")


@pytest.mark.parametrize("name", [None, "", "  ", "UTC", "utc", "Z"])
def test_parse_timezone_treats_none_empty_and_utc_spellings_as_utc(name):
    assert parse_timezone(name) == ZoneInfo("UTC")


def test_parse_timezone_returns_the_named_iana_zone():
    assert parse_timezone("America/Chicago") == CHICAGO
    assert parse_timezone(" Europe/Berlin ") == BERLIN


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "America", "../etc/passwd", "/etc/localtime", 5])
def test_parse_timezone_rejects_unknown_zones_with_timezone_field(name):
    with pytest.raises(ScheduleError) as exc:
        parse_timezone(name)
    assert exc.value.field == "timezone"


# --- parse_every ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30m", 1800), ("2h", 7200), ("45s", 45), ("1d", 86400), ("90", 90), (3600, 3600),
        (60.0, 60), ("1h30m", 5400), ("1h 30m", 5400), ("2 hours", 7200), (" 10M ", 600),
        ("every 15 minutes", 900), ("1 hour and 15 minutes", 4500), ("1.5h", 5400), ("1w", 604800),
    ],
)  # fmt: skip
def test_parse_every_accepts_numbers_and_duration_strings(value, seconds):
    assert parse_every(value) == seconds


@pytest.mark.parametrize(
    "value",
    [True, False, 0, -5, "0m", "-5m", "", "   ", "soon", "10 parsecs", "1e3", 1.5, "0.5s",
     float("nan"), float("inf"), None, [60], "99999d"],
)  # fmt: skip
def test_parse_every_rejects_booleans_non_positive_fractions_and_garbage(value):
    with pytest.raises(ScheduleError) as exc:
        parse_every(value)
    assert exc.value.field == "every"


# --- validate_cron --------------------------------------------------------------------------


def test_validate_cron_normalises_whitespace_and_aliases():
    assert validate_cron("  */5   *  * * *\t") == "*/5 * * * *"
    assert validate_cron("@hourly") == "0 * * * *"
    assert validate_cron("@DAILY") == "0 0 * * *"
    assert validate_cron("0 9 * * MON-FRI") == "0 9 * * MON-FRI"


def test_validate_cron_accepts_a_sixth_field_as_seconds():
    assert validate_cron("*/5 * * * * 30") == "*/5 * * * * 30"


@pytest.mark.parametrize(
    "expr",
    ["", "   ", "* * * *", "* * * * * * *", "61 * * * *", "* 24 * * *", "0 0 31 2 *", "hello world",
     "H * * * *", "@reboot", "* * * * * 61", None, 42],
)  # fmt: skip
def test_validate_cron_rejects_bad_expressions_with_cron_expr_field(expr):
    with pytest.raises(ScheduleError) as exc:
        validate_cron(expr)
    assert exc.value.field == "cron_expr"


# --- cron_next: DST ---------------------------------------------------------------------------


def test_daily_job_in_skipped_hour_fires_once_after_spring_forward_in_chicago():
    # 02:30 does not exist on 2026-03-08; it is shifted forward by the 1 h gap to 03:30 CDT.
    first = cron_next("30 2 * * *", CHICAGO, local(CHICAGO, 2026, 3, 7, 12))
    assert first == utc(2026, 3, 8, 8, 30) == local(CHICAGO, 2026, 3, 8, 3, 30)
    assert cron_next("30 2 * * *", CHICAGO, first) == local(CHICAGO, 2026, 3, 9, 2, 30)
    assert cron_between("30 2 * * *", CHICAGO, *local_day(CHICAGO, date(2026, 3, 8))) == [first]


def test_daily_job_in_skipped_hour_fires_once_after_spring_forward_in_berlin():
    first = cron_next("30 2 * * *", BERLIN, local(BERLIN, 2026, 3, 28, 12))
    assert first == utc(2026, 3, 29, 1, 30) == local(BERLIN, 2026, 3, 29, 3, 30)
    assert cron_next("30 2 * * *", BERLIN, first) == local(BERLIN, 2026, 3, 30, 2, 30)
    assert cron_between("30 2 * * *", BERLIN, *local_day(BERLIN, date(2026, 3, 29))) == [first]


def test_daily_job_in_skipped_hour_is_not_lost_when_asked_from_inside_the_shifted_window():
    # At 03:10 CDT the shifted 02:30 run (03:30 CDT) is still ahead and must not be skipped.
    assert cron_next("30 2 * * *", CHICAGO, utc(2026, 3, 8, 8, 10)) == utc(2026, 3, 8, 8, 30)


def test_daily_job_in_repeated_hour_fires_once_at_the_daylight_instant_in_chicago():
    first = cron_next("30 1 * * *", CHICAGO, local(CHICAGO, 2026, 10, 31, 12))
    assert first == utc(2026, 11, 1, 6, 30)  # 01:30 CDT, not 01:30 CST (07:30Z)
    assert cron_next("30 1 * * *", CHICAGO, first) == utc(2026, 11, 2, 7, 30)
    assert cron_between("30 1 * * *", CHICAGO, *local_day(CHICAGO, date(2026, 11, 1))) == [first]
    # Asked from between the two passes, it waits for the next day.
    assert cron_next("30 1 * * *", CHICAGO, utc(2026, 11, 1, 7, 0)) == utc(2026, 11, 2, 7, 30)


def test_daily_job_in_repeated_hour_fires_once_at_the_daylight_instant_in_berlin():
    first = cron_next("30 2 * * *", BERLIN, local(BERLIN, 2026, 10, 24, 12))
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, not 02:30 CET (01:30Z)
    assert cron_next("30 2 * * *", BERLIN, first) == utc(2026, 10, 26, 1, 30)
    assert cron_between("30 2 * * *", BERLIN, *local_day(BERLIN, date(2026, 10, 25))) == [first]


@pytest.mark.parametrize(
    ("tz", "day", "first_pass", "second_pass"),
    [
        (CHICAGO, date(2026, 11, 1), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)),
        (BERLIN, date(2026, 10, 25), utc(2026, 10, 25, 0), utc(2026, 10, 25, 1)),
    ],
)
def test_hourly_wildcard_job_fires_at_both_instants_of_the_repeated_hour_giving_25_runs(
    tz, day, first_pass, second_pass
):
    runs = cron_between("0 * * * *", tz, *local_day(tz, day))
    assert len(runs) == 25
    assert first_pass in runs and second_pass in runs
    assert all(b - a == timedelta(hours=1) for a, b in zip(runs, runs[1:], strict=False))


@pytest.mark.parametrize(("tz", "day"), [(CHICAGO, date(2026, 3, 8)), (BERLIN, date(2026, 3, 29))])
def test_hourly_wildcard_job_skips_the_missing_hour_giving_23_runs_on_spring_forward_day(tz, day):
    runs = cron_between("0 * * * *", tz, *local_day(tz, day))
    assert len(runs) == 23
    assert 2 not in {run.astimezone(tz).hour for run in runs}
    assert all(b - a == timedelta(hours=1) for a, b in zip(runs, runs[1:], strict=False))


def test_quarter_hourly_job_fires_every_real_fifteen_minutes_across_fall_back():
    runs = cron_between("*/15 * * * *", CHICAGO, *local_day(CHICAGO, date(2026, 11, 1)))
    assert len(runs) == 100
    assert all(b - a == timedelta(minutes=15) for a, b in zip(runs, runs[1:], strict=False))


@pytest.mark.parametrize(
    ("tz", "before", "after"),
    [
        (CHICAGO, (utc(2026, 3, 7, 15), utc(2026, 3, 8, 14)), (utc(2026, 10, 31, 14), utc(2026, 11, 1, 15))),
        (BERLIN, (utc(2026, 3, 28, 8), utc(2026, 3, 29, 7)), (utc(2026, 10, 24, 7), utc(2026, 10, 25, 8))),
    ],
)
def test_daily_nine_am_job_keeps_nine_am_local_across_both_transitions(tz, before, after):
    for expected in (before, after):
        runs = cron_between("0 9 * * *", tz, expected[0] - timedelta(hours=1), expected[1])
        assert runs == list(expected)
        assert {run.astimezone(tz).hour for run in runs} == {9}
        assert runs[1] - runs[0] != timedelta(days=1)  # the UTC instant shifts by an hour


def test_fixed_hour_job_with_several_slots_in_the_gap_shifts_each_and_never_duplicates():
    gap_day = (utc(2026, 3, 8, 7), utc(2026, 3, 8, 10))
    shifted = [local(CHICAGO, 2026, 3, 8, 3, m) for m in (0, 20, 40)]
    assert cron_between("*/20 2 * * *", CHICAGO, *gap_day) == shifted
    # Shifted 02:00/02:30 land on the real 03:00/03:30 slots and fire once each.
    both = [local(CHICAGO, 2026, 3, 8, 3, m) for m in (0, 30)]
    assert cron_between("0,30 2,3 * * *", CHICAGO, *gap_day) == both


def test_six_field_cron_fires_on_the_seconds_given_in_the_last_field():
    start = utc(2026, 1, 5, 10, 0, 0)
    assert cron_between("*/5 * * * * 30", UTC_ZONE, start, start + timedelta(minutes=11)) == [
        utc(2026, 1, 5, 10, 0, 30), utc(2026, 1, 5, 10, 5, 30), utc(2026, 1, 5, 10, 10, 30),
    ]  # fmt: skip
    assert cron_next("* * * * * */15", UTC_ZONE, utc(2026, 1, 5, 10, 0, 15)) == utc(2026, 1, 5, 10, 0, 30)


def test_six_field_cron_keeps_seconds_through_spring_forward():
    runs = cron_between("0 * * * * 15", CHICAGO, utc(2026, 3, 8, 7), utc(2026, 3, 8, 9, 1))
    assert runs == [utc(2026, 3, 8, 7, 0, 15), utc(2026, 3, 8, 8, 0, 15), utc(2026, 3, 8, 9, 0, 15)]
    assert [r.astimezone(CHICAGO).hour for r in runs] == [1, 3, 4]


def test_cron_next_returns_aware_utc_and_reads_naive_after_as_utc():
    result = cron_next("0 12 * * *", CHICAGO, datetime(2026, 1, 5, 0, 0))
    assert result == utc(2026, 1, 5, 18) and result.tzinfo is UTC


def test_cron_next_is_strictly_after_even_with_microseconds():
    assert cron_next("0 * * * *", UTC_ZONE, utc(2026, 1, 5, 10)) == utc(2026, 1, 5, 11)
    almost = utc(2026, 1, 5, 10) - timedelta(microseconds=1)
    assert cron_next("0 * * * *", UTC_ZONE, almost) == utc(2026, 1, 5, 10)


# An independent model of the DST rule, by brute force over real minutes: a matching real
# minute fires (only its first pass for jobs whose hour field is not all hours), and a
# matching nonexistent wall minute fires at its fold=0 reading (shifted forward by the gap).
def _field(spec: str, size: int) -> set[int]:
    if spec == "*":
        return set(range(size))
    if spec.startswith("*/"):
        return set(range(0, size, int(spec[2:])))
    return {int(part) for part in spec.split(",")}


def _model_fires(expr: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    minute_spec, hour_spec = expr.split()[:2]
    minutes, hours = _field(minute_spec, 60), _field(hour_spec, 24)
    all_hours = hours == set(range(24))
    fires = set()
    moment = start.replace(second=0, microsecond=0)
    while moment <= end:
        wall = moment.astimezone(tz)
        if wall.minute in minutes and wall.hour in hours and (all_hours or wall.fold == 0):
            fires.add(moment)
        moment += timedelta(minutes=1)
    if not all_hours:
        wall = start.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        while wall <= end.astimezone(tz).replace(tzinfo=None):
            aware = wall.replace(tzinfo=tz)
            nonexistent = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall
            if nonexistent and wall.minute in minutes and wall.hour in hours:
                fires.add(aware.astimezone(UTC))
            wall += timedelta(minutes=1)
    return sorted(fire for fire in fires if start < fire <= end)


@pytest.mark.parametrize(
    "expr",
    ["30 2 * * *", "30 1 * * *", "0 * * * *", "*/15 * * * *", "*/20 2 * * *", "0,30 1,2,3 * * *",
     "45 0,1,2,3 * * *", "0 */2 * * *", "* 2 * * *"],
)  # fmt: skip
@pytest.mark.parametrize(
    ("tz", "day"),
    [(CHICAGO, date(2026, 3, 8)), (CHICAGO, date(2026, 11, 1)), (BERLIN, date(2026, 3, 29)),
     (BERLIN, date(2026, 10, 25)), (LORD_HOWE, date(2026, 4, 5)), (LORD_HOWE, date(2026, 10, 4))],
    ids=["chicago-spring", "chicago-fall", "berlin-spring", "berlin-fall", "howe-fall", "howe-spring"],
)  # fmt: skip
def test_cron_next_from_any_instant_near_a_transition_agrees_with_the_dst_model(expr, tz, day):
    start = local(tz, day.year, day.month, day.day) - timedelta(hours=6)
    end = start + timedelta(hours=36)
    model = _model_fires(expr, tz, start - timedelta(days=1), end + timedelta(days=2))
    # Walking cron_next gives exactly the model's runs, strictly increasing.
    walked, cursor = [], start
    while (cursor := cron_next(expr, tz, cursor)) <= end:
        walked.append(cursor)
    assert walked == [fire for fire in model if start < fire <= end]
    # And starting from arbitrary instants (odd minutes, seconds) never skips or repeats.
    probe = start
    while probe < end:
        assert cron_next(expr, tz, probe) == next(fire for fire in model if fire > probe)
        probe += timedelta(minutes=7, seconds=13)


def test_iterating_a_multi_slot_job_through_a_whole_dst_year_is_strictly_increasing():
    runs = cron_between("0,30 1,2,3 * * *", CHICAGO, utc(2026, 1, 1, 6), utc(2027, 1, 1, 6), limit=5000)
    assert all(a < b for a, b in zip(runs, runs[1:], strict=False))
    # 6 a day, except spring-forward day where shifted 02:00/02:30 merge into 03:00/03:30.
    assert len(runs) == 365 * 6 - 2


# --- every_next -----------------------------------------------------------------------------


def test_every_next_counts_from_the_anchor_not_from_after():
    anchor = utc(2026, 1, 5, 10, 0, 0)
    assert every_next(600, anchor, utc(2026, 1, 5, 10, 7, 31)) == utc(2026, 1, 5, 10, 10)
    assert every_next(600, anchor, utc(2026, 1, 5, 10, 10)) == utc(2026, 1, 5, 10, 20)  # strictly after
    assert every_next(600, anchor, utc(2026, 1, 8, 3, 59, 59)) == utc(2026, 1, 8, 4, 0)


def test_every_next_returns_the_anchor_itself_when_after_is_earlier():
    anchor = utc(2026, 1, 5, 10, 0, 0)
    assert every_next(600, anchor, utc(2026, 1, 1)) == anchor
    assert every_next(600, anchor, anchor - timedelta(microseconds=1)) == anchor


def test_every_next_counts_elapsed_seconds_straight_through_dst():
    anchor = local(CHICAGO, 2026, 3, 8, 0, 0)
    runs = [every_next(3600, anchor, anchor + timedelta(hours=h)) for h in range(4)]
    assert [r.astimezone(CHICAGO).hour for r in runs] == [1, 3, 4, 5]


@pytest.mark.parametrize("every", [0, -60, True])
def test_every_next_rejects_non_positive_intervals(every):
    with pytest.raises(ScheduleError) as exc:
        every_next(every, NOW, NOW)
    assert exc.value.field == "every"


# --- occurrences / next_occurrence ----------------------------------------------------------


def _occ(kind: str, **overrides: object) -> list[datetime]:
    params: dict = dict(
        cron_expr=None, every_seconds=None, run_at=None, tz=UTC_ZONE,
        anchor=utc(2026, 1, 5), after=utc(2026, 1, 5), until=utc(2026, 1, 6), limit=100,
    )  # fmt: skip
    params.update(overrides)
    return occurrences(kind, **params)


def test_occurrences_stop_at_the_limit():
    assert len(_occ("cron", cron_expr="*/5 * * * *", limit=7)) == 7
    assert len(_occ("every", every_seconds=60, limit=3)) == 3
    assert _occ("cron", cron_expr="*/5 * * * *", limit=0) == []


def test_occurrences_window_excludes_after_and_includes_until():
    runs = _occ("cron", cron_expr="0 * * * *", after=utc(2026, 1, 5, 10), until=utc(2026, 1, 5, 13))
    assert runs == [utc(2026, 1, 5, 11), utc(2026, 1, 5, 12), utc(2026, 1, 5, 13)]
    runs = _occ("every", every_seconds=3600, after=utc(2026, 1, 5, 10), until=utc(2026, 1, 5, 12))
    assert runs == [utc(2026, 1, 5, 11), utc(2026, 1, 5, 12)]


def test_occurrences_of_a_one_shot_is_its_run_at_only_inside_the_window():
    run_at = utc(2026, 1, 5, 12)
    assert _occ("at", run_at=run_at) == [run_at]
    assert _occ("at", run_at=run_at, until=run_at) == [run_at]
    assert _occ("at", run_at=run_at, after=run_at) == []
    assert _occ("at", run_at=run_at, until=run_at - timedelta(seconds=1)) == []


def test_occurrences_reject_unknown_kinds_and_missing_parameters():
    with pytest.raises(ScheduleError) as exc:
        _occ("weekly")
    assert exc.value.field == "kind"
    for kind, field in (("cron", "cron_expr"), ("every", "every"), ("at", "run_at")):
        with pytest.raises(ScheduleError) as exc:
            _occ(kind)
        assert exc.value.field == field


def test_next_occurrence_covers_each_kind_and_ends_a_past_one_shot():
    common = dict(tz=CHICAGO, anchor=utc(2026, 1, 5), after=utc(2026, 1, 5, 12))
    none = dict(cron_expr=None, every_seconds=None, run_at=None)
    assert next_occurrence("at", **{**none, "run_at": utc(2026, 1, 6)}, **common) == utc(2026, 1, 6)
    assert next_occurrence("at", **{**none, "run_at": utc(2026, 1, 5, 12)}, **common) is None
    assert next_occurrence("every", **{**none, "every_seconds": 5400}, **common) == utc(2026, 1, 5, 13, 30)
    assert next_occurrence("cron", **{**none, "cron_expr": "0 9 * * *"}, **common) == utc(2026, 1, 5, 15)


# --- parse_run_at ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-10T12:00:00Z", utc(2026, 3, 10, 12)),
        ("2026-03-10T12:00:00+02:00", utc(2026, 3, 10, 10)),
        ("2026-03-10T12:00:00", utc(2026, 3, 10, 17)),  # naive: Chicago wall time, CDT by then
        ("2026-03-07 10:00", utc(2026, 3, 7, 16)),  # naive: still CST
        ("2026-03-10", utc(2026, 3, 10, 5)),
        ("2026-03-08T02:30", utc(2026, 3, 8, 8, 30)),  # nonexistent: shifted forward to 03:30 CDT
    ],
)
def test_parse_run_at_reads_iso_8601_honouring_offsets_and_localising_naive_times(value, expected):
    assert parse_run_at(value, "America/Chicago", NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1773000000, utc(2026, 3, 8, 20)),
        (1773000000.25, utc(2026, 3, 8, 20, 0, 0, 250000)),
        ("1773000000", utc(2026, 3, 8, 20)),
        (" 1773000000.5 ", utc(2026, 3, 8, 20, 0, 0, 500000)),
    ],
)
def test_parse_run_at_reads_epoch_seconds_as_numbers_or_numeric_strings(value, expected):
    assert parse_run_at(value, "America/Chicago", NOW) == expected


@pytest.mark.parametrize(
    ("value", "delta"),
    [
        ("20m", timedelta(minutes=20)), ("45s", timedelta(seconds=45)), ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)), ("in 90 minutes", timedelta(minutes=90)),
        ("in 2 hours", timedelta(hours=2)), ("in 1 day", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)), ("In 5 Minutes", timedelta(minutes=5)),
        ("10 minutes from now", timedelta(minutes=10)), ("+15m", timedelta(minutes=15)),
    ],
)  # fmt: skip
def test_parse_run_at_reads_relative_durations_as_elapsed_time_from_now(value, delta):
    assert parse_run_at(value, "America/Chicago", NOW) == NOW + delta


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tomorrow 9:15am", utc(2026, 3, 8, 14, 15)),  # tomorrow is CDT (-5)
        ("1am", utc(2026, 3, 8, 7)),  # 01:00 already passed today -> tomorrow, still CST
        ("9:30pm", utc(2026, 3, 8, 3, 30)),  # tonight 21:30 CST
        ("today 5pm", utc(2026, 3, 7, 23)),
        ("tomorrow at 9", utc(2026, 3, 8, 14)),
        ("9am tomorrow", utc(2026, 3, 8, 14)),
        ("at 9", utc(2026, 3, 8, 14)),  # now is exactly 09:00 -> the next 09:00
        ("9:01", utc(2026, 3, 7, 15, 1)),
        ("noon", utc(2026, 3, 7, 18)),
        ("tomorrow midnight", utc(2026, 3, 8, 6)),
        ("10 P.M.", utc(2026, 3, 8, 4)),
    ],
)
def test_parse_run_at_reads_times_of_day_in_the_given_zone(value, expected):
    assert parse_run_at(value, "America/Chicago", NOW) == expected


def test_parse_run_at_bare_time_already_passed_today_means_tomorrow():
    three_am = local(CHICAGO, 2026, 6, 10, 3, 0)
    assert parse_run_at("1am", "America/Chicago", three_am) == local(CHICAGO, 2026, 6, 11, 1, 0)
    assert parse_run_at("9pm", "America/Chicago", three_am) == local(CHICAGO, 2026, 6, 10, 21, 0)


def test_parse_run_at_bare_time_in_a_repeated_hour_picks_the_next_pass():
    during_first_pass = utc(2026, 11, 1, 6, 45)  # 01:45 CDT; 01:30 CST is 45 minutes away
    assert parse_run_at("1:30am", "America/Chicago", during_first_pass) == utc(2026, 11, 1, 7, 30)


def test_parse_run_at_bare_time_in_a_skipped_hour_is_shifted_forward():
    midnight = local(CHICAGO, 2026, 3, 8, 0, 0)
    assert parse_run_at("2:30am", "America/Chicago", midnight) == local(CHICAGO, 2026, 3, 8, 3, 30)


def test_parse_run_at_falls_back_to_natural_language_with_correct_dst_offsets():
    # dateparser's own localisation would use today's CST offset for a CDT date.
    assert parse_run_at("next friday 5pm", "America/Chicago", NOW) == utc(2026, 3, 13, 22)
    assert parse_run_at("5pm EST", "America/Chicago", NOW) == utc(2026, 3, 7, 22)


def test_parse_run_at_returns_aware_utc_and_defaults_an_empty_zone_to_utc():
    result = parse_run_at("tomorrow 9am", "", NOW)
    assert result == utc(2026, 3, 8, 9) and result.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    ["garbage", "", "   ", "a", "tomorrow-ish??", "25:00", "13pm", "nan", "in soon", "1e999",
     True, False, None, [], float("nan"), float("inf"), 1e20],
)  # fmt: skip
def test_parse_run_at_rejects_garbage_and_booleans_with_run_at_field(value):
    with pytest.raises(ScheduleError) as exc:
        parse_run_at(value, "America/Chicago", NOW)
    assert exc.value.field == "run_at"


def test_parse_run_at_rejects_an_unknown_zone_with_timezone_field():
    with pytest.raises(ScheduleError) as exc:
        parse_run_at("tomorrow 9am", "Mars/Base", NOW)
    assert exc.value.field == "timezone"


def test_parse_run_at_does_not_import_dateparser_for_the_cheap_forms():
    script = (
        "import sys; from datetime import datetime, UTC; from scheduling.schedule import parse_run_at\n"
        "now = datetime(2026, 3, 7, 15, tzinfo=UTC)\n"
        "for v in ['2026-03-10T12:00Z', '1773000000', 1773000000, '20m', 'in 2 hours',"
        " 'tomorrow 9:15am', '1am', 'today 5pm']:\n"
        "    parse_run_at(v, 'America/Chicago', now)\n"
        "assert 'dateparser' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script], cwd=root, check=True, timeout=60)
