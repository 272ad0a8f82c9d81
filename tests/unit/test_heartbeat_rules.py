"""Pure heartbeat rules: active hours, OK-only replies, delivery suppression, config validation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from scheduling.errors import InvalidInput
from scheduling.heartbeat_rules import (
    alert_digest,
    clean_session_input,
    in_active_hours,
    is_ok_only,
    next_active_start,
    parse_active_hours,
    summarise_reply,
    suppression_reason,
)
from scheduling.schedule import ScheduleError

UTC_ZONE = ZoneInfo("UTC")
CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SHOWN = {"show_ok": True, "show_alerts": True, "dedupe_window_seconds": 3600}
LAST = {"mode": "last", "targets": []}


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC)


# --- active hours ----------------------------------------------------------------------------------


def test_active_hours_parse_into_start_and_end_times():
    assert parse_active_hours("09:00-17:30") == (time(9), time(17, 30))
    assert parse_active_hours(" 9:05 - 17:00 ") == (time(9, 5), time(17))
    assert parse_active_hours("22:00-24:00") == (time(22), time(0))


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_active_hours_mean_always(blank):
    assert parse_active_hours(blank) is None
    assert in_active_hours(None, UTC_ZONE, at(3))


@pytest.mark.parametrize("bad", ["9-17", "09:00", "25:00-26:00", "09:60-10:00", "nine to five", 900])
def test_malformed_active_hours_raise_naming_the_field(bad):
    with pytest.raises(ScheduleError) as caught:
        parse_active_hours(bad)
    assert caught.value.field == "active_hours"


def test_window_start_is_inclusive_and_end_exclusive():
    spec = parse_active_hours("09:00-17:00")
    assert not in_active_hours(spec, UTC_ZONE, at(8, 59))
    assert in_active_hours(spec, UTC_ZONE, at(9, 0))
    assert in_active_hours(spec, UTC_ZONE, at(16, 59))
    assert not in_active_hours(spec, UTC_ZONE, at(17, 0))


def test_window_that_wraps_midnight_covers_late_evening_and_early_morning():
    spec = parse_active_hours("22:00-06:00")
    assert in_active_hours(spec, UTC_ZONE, at(23, 30))
    assert in_active_hours(spec, UTC_ZONE, at(0, 0))
    assert in_active_hours(spec, UTC_ZONE, at(5, 59))
    assert not in_active_hours(spec, UTC_ZONE, at(6, 0))
    assert not in_active_hours(spec, UTC_ZONE, at(12, 0))


def test_equal_start_and_end_mean_always_active():
    spec = parse_active_hours("08:00-08:00")
    assert all(in_active_hours(spec, UTC_ZONE, at(hour)) for hour in range(24))
    assert next_active_start(spec, UTC_ZONE, NOW) == NOW


def test_active_hours_are_read_on_the_session_wall_clock():
    # 12:00 UTC is 07:00 in Chicago (CDT, UTC-5): before a 09:00 start there.
    spec = parse_active_hours("09:00-17:00")
    assert in_active_hours(spec, UTC_ZONE, NOW)
    assert not in_active_hours(spec, CHICAGO, NOW)
    assert next_active_start(spec, CHICAGO, NOW) == at(14, 0)


def test_next_active_start_is_tomorrow_once_today_window_has_opened():
    spec = parse_active_hours("09:00-17:00")
    assert next_active_start(spec, UTC_ZONE, at(18)) == at(9, day=2)
    assert next_active_start(spec, UTC_ZONE, at(9)) == at(9, day=2)
    assert next_active_start("09:00-17:00", UTC_ZONE, at(8)) == at(9)


def test_window_keeps_its_wall_clock_hours_across_spring_forward():
    spec = parse_active_hours("09:00-17:00")
    saturday_evening = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)  # 17:00 CST
    # Sunday 2026-03-08 is CDT from 02:00: 09:00 local is 14:00 UTC, no longer 15:00.
    assert next_active_start(spec, CHICAGO, saturday_evening) == datetime(2026, 3, 8, 14, 0, tzinfo=UTC)
    assert in_active_hours(spec, CHICAGO, datetime(2026, 3, 8, 14, 0, tzinfo=UTC))
    assert not in_active_hours(spec, CHICAGO, datetime(2026, 3, 8, 13, 59, tzinfo=UTC))


def test_window_starting_inside_the_spring_forward_gap_opens_when_the_gap_ends():
    spec = parse_active_hours("02:30-05:00")
    before = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 00:00 CST
    opens = next_active_start(spec, CHICAGO, before)
    assert opens == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 03:00 CDT: the first real instant after 02:30
    assert in_active_hours(spec, CHICAGO, opens)
    assert not in_active_hours(spec, CHICAGO, opens - timedelta(seconds=1))


def test_window_starting_in_the_repeated_fall_back_hour_opens_on_its_first_pass():
    spec = parse_active_hours("01:30-03:00")
    before = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 00:00 CDT
    assert next_active_start(spec, CHICAGO, before) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 CDT


# --- OK-only replies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "HEARTBEAT_OK",
        "  HEARTBEAT_OK\n",
        "**HEARTBEAT_OK**",
        "HEARTBEAT_OK - inbox checked, nothing new.",
        "Checked the calendar; nothing due. HEARTBEAT_OK",
        "HEARTBEAT_OK " + "x" * 300,
        "",
    ],
)
def test_token_with_at_most_300_other_characters_is_ok_only(reply):
    assert is_ok_only(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "HEARTBEAT_OK " + "x" * 301,
        "The build is failing on main.",
        "Before HEARTBEAT_OK after",
        "HEARTBEAT_OKAY",
        "NOT_HEARTBEAT_OK",
    ],
)
def test_other_replies_are_alerts(reply):
    assert not is_ok_only(reply)


# --- suppression -----------------------------------------------------------------------------------


def test_ok_only_reply_is_suppressed_unless_show_ok():
    assert suppression_reason(True, {"show_ok": False}, LAST, "", "", None, NOW) == "ok_suppressed"
    assert suppression_reason(True, SHOWN, LAST, "", "", None, NOW) is None


def test_alert_is_suppressed_when_alerts_are_hidden():
    hidden = {**SHOWN, "show_alerts": False}
    assert suppression_reason(False, hidden, LAST, "d", "", None, NOW) == "alerts_suppressed"


def test_same_alert_within_the_dedupe_window_is_suppressed_and_after_it_is_sent():
    digest = alert_digest("disk almost full")
    recent = NOW - timedelta(minutes=59)
    assert suppression_reason(False, SHOWN, LAST, digest, digest, recent, NOW) == "dedupe"
    assert suppression_reason(False, SHOWN, LAST, digest, digest, NOW - timedelta(hours=1), NOW) is None
    assert suppression_reason(False, SHOWN, LAST, digest, alert_digest("other"), recent, NOW) is None


def test_alert_digest_ignores_whitespace_differences():
    assert alert_digest("disk  almost\nfull ") == alert_digest("disk almost full")


def test_delivery_mode_none_and_explicit_without_targets_suppress():
    none = {"mode": "none", "targets": []}
    empty = {"mode": "explicit", "targets": []}
    assert suppression_reason(False, SHOWN, none, "d", "", None, NOW) == "delivery_none"
    assert suppression_reason(False, SHOWN, empty, "d", "", None, NOW) == "no_targets"
    assert (
        suppression_reason(False, SHOWN, {"mode": "explicit", "targets": ["ops"]}, "d", "", None, NOW) is None
    )


def test_summary_has_the_contract_keys_and_the_delivery_used():
    session = SimpleNamespace(
        visibility=SHOWN, delivery=LAST, channel="slack:#ops", last_alert_digest="", last_alert_at=None
    )
    summary, digest = summarise_reply(False, "disk almost full", session=session, now=NOW)
    assert set(summary) == {"timestamp", "ok_only", "text", "sent", "suppressed_reason", "delivery"}
    assert summary["timestamp"] == "2026-06-01T12:00:00Z"
    assert summary["sent"] is True and summary["suppressed_reason"] is None
    assert summary["delivery"] == {"mode": "last", "targets": ["slack:#ops"]}
    assert digest == alert_digest("disk almost full")


# --- session config --------------------------------------------------------------------------------


def test_new_session_config_defaults_to_thirty_minutes():
    assert clean_session_input({}, None, 60) == {"every_seconds": 1800}


def test_session_config_is_cleaned_to_model_values():
    clean = clean_session_input(
        {
            "every": "2h",
            "active_hours": "9:00-17:00",
            "timezone": "Europe/Berlin",
            "enabled": False,
            "delivery": {"mode": "explicit", "targets": ["ops"]},
            "visibility": {"show_ok": True},
        },
        None,
        60,
    )
    assert clean["every_seconds"] == 7200 and clean["active_hours"] == "09:00-17:00"
    assert clean["timezone"] == "Europe/Berlin" and clean["enabled"] is False
    assert clean["visibility"] == {"show_ok": True, "show_alerts": True, "dedupe_window_seconds": 86400}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"every": "30s"}, "every"),
        ({"every": "soon"}, "every"),
        ({"active_hours": "9-5"}, "active_hours"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"enabled": "yes"}, "enabled"),
        ({"delivery": {"mode": "carrier-pigeon"}}, "delivery"),
        ({"delivery": {"mode": "explicit", "targets": "ops"}}, "delivery"),
        ({"delivery": {"mode": "last", "target": []}}, "delivery"),
        ({"visibility": {"show_ok": "yes"}}, "visibility"),
        ({"visibility": {"dedupe_window_seconds": -1}}, "visibility"),
        ({"visibility": {"loud": True}}, "visibility"),
        ({"target": {"type": "handler", "name": "nope"}}, "target.name"),
        ({"channel": 7}, "channel"),
    ],
)
def test_bad_session_config_raises_naming_the_field(data, field):
    with pytest.raises(InvalidInput) as caught:
        clean_session_input(data, None, 60)
    assert caught.value.field == field
