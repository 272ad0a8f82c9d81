"""The deterministic change-request parser (contract §7): a small fixed grammar, never a guess.

    every N unit        "every 2 hours", "every 30m", "run every 1 day", "every hour"
    in N unit           "in 90 minutes", "run in 2h"
    at H[:MM]am/pm      "at 9am", "at 5:30 pm", "run at 11:15PM"
    pause | resume | run now

Units: s/sec/second(s), m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s). Anything else is refused
with a 400 naming `instruction`. Pure: no database, no clock (the caller turns "in"/"at" into a time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scheduling.errors import InvalidInput

UNIT_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * 86400),
}
_EVERY = re.compile(r"(?:run\s+)?every\s+(?:(\d{1,7})\s*)?([a-z]+)")
_IN = re.compile(r"(?:run\s+)?in\s+(\d{1,7})\s*([a-z]+)")
_AT = re.compile(r"(?:run\s+)?at\s+(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\.?")
_WORDS = {"pause": "pause", "resume": "resume", "run now": "run_now"}
GRAMMAR = "'every N unit', 'in N unit', 'at H[:MM]am/pm', 'pause', 'resume' or 'run now'"


@dataclass(frozen=True)
class Instruction:
    """What a change request asks for: exactly one of the fields is set."""

    every_seconds: int | None = None
    delay_seconds: int | None = None
    clock_time: str | None = None  # "9:30am": a wall-clock time for schedule.parse_run_at
    action: str | None = None


def parse_instruction(text: object) -> Instruction:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("instruction is required, e.g. 'every 2 hours'", "instruction")
    if len(text) > 500:
        raise InvalidInput("instruction must be at most 500 characters", "instruction")
    normal = " ".join(text.lower().split()).rstrip(".!")
    if normal in _WORDS:
        return Instruction(action=_WORDS[normal])
    if match := _EVERY.fullmatch(normal):
        return Instruction(every_seconds=_seconds(match[1] or "1", match[2], text))
    if match := _IN.fullmatch(normal):
        return Instruction(delay_seconds=_seconds(match[1], match[2], text))
    if match := _AT.fullmatch(normal):
        hour, minute = int(match[1]), int(match[2] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            raise InvalidInput(f"{text!r} is not a 12-hour time of day", "instruction")
        return Instruction(clock_time=f"{hour}:{minute:02d}{match[3]}m")
    raise InvalidInput(f"cannot understand {text!r}; use {GRAMMAR}", "instruction")


def _seconds(number: str, unit: str, text: str) -> int:
    if unit not in UNIT_SECONDS:
        raise InvalidInput(f"unknown unit {unit!r} in {text!r}; use seconds, minutes, hours, days or weeks",
                           "instruction")  # fmt: skip
    seconds = int(number) * UNIT_SECONDS[unit]
    if seconds <= 0:
        raise InvalidInput(f"{text!r} names no time", "instruction")
    return seconds
