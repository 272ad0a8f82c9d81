"""`manage.py backfill`: work through the stasis queue in bulk after an outage.

    manage.py backfill list      [filters]
    manage.py backfill approve   [filters] [--dry-run]
    manage.py backfill reschedule [filters] [--run-at WHEN] [--timezone TZ] [--dry-run]
    manage.py backfill delete    [filters] [--dry-run]

Filters: --job, --source, --status (default pending), --since/--until (on the missed occurrence's
scheduled time), --owner, --limit. Every entry is resolved by the same service the API and the admin
call, each in its own transaction, so one failure (say a job that is running under overlap=skip) does not
undo the others; failures are listed at the end and make the exit status 1.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from scheduling import clock
from scheduling.errors import DomainError
from scheduling.models import StasisEntry, StasisStatus
from scheduling.services import stasis

# Batches at least this large get a progress bar (on stderr, so stdout stays a clean report).
PROGRESS_FROM = 20


def parse_instant(value: str, option: str) -> datetime:
    """An ISO-8601 instant (naive = UTC) or epoch seconds."""
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"{option}: not an ISO-8601 time or epoch seconds: {value!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "List stasis entries by filter and approve, reschedule or delete them in bulk."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operation", choices=["list", "approve", "reschedule", "delete"])
        parser.add_argument("--job", help="only entries of this job id (source_ref)")
        parser.add_argument("--source", choices=["cron", "heartbeat"])
        statuses = [*StasisStatus.values, "all"]
        parser.add_argument("--status", default=StasisStatus.PENDING, choices=statuses)
        parser.add_argument("--owner", help="only entries of this owner id")
        parser.add_argument("--since", help="scheduled at or after (ISO-8601 or epoch)")
        parser.add_argument("--until", help="scheduled before (ISO-8601 or epoch)")
        parser.add_argument("--limit", type=int, default=0, help="at most this many entries (0 = all)")
        parser.add_argument("--run-at", help="reschedule: when the one-shot copy runs (default now + 1 h)")
        parser.add_argument("--timezone", help="reschedule: zone of a naive --run-at (default: the job's)")
        parser.add_argument("--dry-run", action="store_true", help="print what would happen, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        entries = self._select(options)
        operation = options["operation"]
        if operation == "list":
            self._list(entries)
            return
        if options["status"] not in (StasisStatus.PENDING,):
            raise CommandError("only pending entries can be resolved: drop --status or use --status pending")
        if options["dry_run"]:
            for entry in entries:
                self.stdout.write(f"would {self._describe(operation, entry, options)}")
            self.stdout.write(f"dry run: {len(entries)} entries, nothing changed")
            return
        failures = self._apply(operation, entries, options)
        done = len(entries) - len(failures)
        self.stdout.write(f"{operation}: {done} of {len(entries)} entries done, {len(failures)} failed")
        for entry, detail in failures:
            self.stdout.write(f"  failed {entry.entry_id} ({entry.event_id}): {detail}")
        if failures:
            sys.exit(1)

    def _select(self, options: dict[str, Any]) -> list[StasisEntry]:
        entries = StasisEntry.objects.all()
        if options["status"] != "all":
            entries = entries.filter(status=options["status"])
        if options["job"]:
            entries = entries.filter(source_ref=options["job"])
        if options["source"]:
            entries = entries.filter(source=options["source"])
        if options["owner"]:
            entries = entries.filter(owner_id=options["owner"])
        if options["since"]:
            entries = entries.filter(scheduled_at__gte=parse_instant(options["since"], "--since"))
        if options["until"]:
            entries = entries.filter(scheduled_at__lt=parse_instant(options["until"], "--until"))
        entries = entries.order_by("scheduled_at", "entry_id")
        return list(entries[: options["limit"]] if options["limit"] > 0 else entries)

    def _list(self, entries: list[StasisEntry]) -> None:
        for entry in entries:
            self.stdout.write(
                f"{entry.entry_id}  {entry.status:<18} {entry.event_id}  "
                f"scheduled={clock.iso(entry.scheduled_at)}  detected={clock.iso(entry.detected_at)}"
                f"  reason={entry.reason!r}"
            )
        self.stdout.write(f"{len(entries)} entries")

    def _describe(self, operation: str, entry: StasisEntry, options: dict[str, Any]) -> str:
        what = f"{entry.entry_id} ({entry.event_id}, scheduled {clock.iso(entry.scheduled_at)})"
        if operation == "approve":
            return f"approve {what}: run job {entry.source_ref} now with its original scheduled time"
        if operation == "reschedule":
            when = options["run_at"] or "now + 1 h"
            zone = options["timezone"] or "the job's time zone"
            return f"reschedule {what}: one-shot copy of job {entry.source_ref} at {when} ({zone})"
        return f"delete {what}: resolve it as deleted, run nothing"

    def _apply(
        self, operation: str, entries: list[StasisEntry], options: dict[str, Any]
    ) -> list[tuple[StasisEntry, str]]:
        failures: list[tuple[StasisEntry, str]] = []
        stream = options.get("stderr") or sys.stderr  # call_command(stderr=...) in tests, else the terminal
        bar = tqdm(entries, desc=operation, unit="entry", file=stream, disable=len(entries) < PROGRESS_FROM)
        for entry in bar:
            try:
                # Each service call is its own transaction: a failure here leaves the others applied.
                outcome = self._apply_one(operation, entry, options)
            except DomainError as error:
                failures.append((entry, error.detail))
                continue
            if len(entries) < PROGRESS_FROM:
                self.stdout.write(f"{operation}d {entry.entry_id}: {outcome}")
        return failures

    def _apply_one(self, operation: str, entry: StasisEntry, options: dict[str, Any]) -> str:
        if operation == "approve":
            run = stasis.approve_backfill_run(entry.entry_id)
            return f"queued run {run.run_id}"
        if operation == "reschedule":
            job = stasis.reschedule(entry.entry_id, options["run_at"], options["timezone"])
            return f"one-shot job {job.job_id} at {clock.iso(job.next_run_at)}"
        stasis.delete_missed(entry.entry_id)
        return "deleted"
