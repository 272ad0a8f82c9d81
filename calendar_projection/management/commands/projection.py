from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calendar_projection.compare import compare
from calendar_projection.models import current_state
from calendar_projection.projector import project_next_batch, rebuild
from calendar_projection.window import resolve_window
from scheduling import clock


class Command(BaseCommand):
    help = (
        "projection rebuild: rebuild the calendar read model from the domain tables (the version keeps "
        "increasing). projection compare: diff the projection path against the scan path for a window; "
        "exits non-zero on any difference."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["rebuild", "compare"])
        parser.add_argument("--start", default=None, help="epoch seconds or ISO-8601 (default: this week)")
        parser.add_argument("--end", default=None)
        parser.add_argument("--view", default="week", choices=["day", "week"])
        parser.add_argument("--timezone", default=None, help="IANA zone of the window")
        parser.add_argument("--source", default="all", choices=["all", "cron", "heartbeat"])
        parser.add_argument("--owner", default=None)
        parser.add_argument(
            "--no-catch-up", action="store_true", help="compare without applying pending events first"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "rebuild":
            rebuild()
            state = current_state()
            self.stdout.write(f"rebuilt: version={state.version} last_event_seq={state.last_event_seq}")
            return
        if not options["no_catch_up"]:
            while project_next_batch():
                pass
        now = clock.now()
        window = resolve_window(
            view=options["view"], start=options["start"], end=options["end"], tz_name=options["timezone"],
            fallback_tz=settings.UA_DEFAULT_TIMEZONE, now=now,
        )  # fmt: skip
        limit = settings.UA_CALENDAR_MAX_OCCURRENCES_PER_JOB
        diff = compare(window, options["source"], options["owner"], now, limit)
        span = f"{clock.iso(window.start)} .. {clock.iso(window.end)} ({window.tz_name})"
        if diff.empty:
            self.stdout.write(f"projection and scan agree for {span}")
            return
        for event_id, status in sorted(diff.only_projection):
            self.stdout.write(f"only in projection: {event_id} {status}")
        for event_id, status in sorted(diff.only_scan):
            self.stdout.write(f"only in scan:       {event_id} {status}")
        total = len(diff.only_projection) + len(diff.only_scan)
        raise CommandError(f"{total} differences between projection and scan for {span}")
