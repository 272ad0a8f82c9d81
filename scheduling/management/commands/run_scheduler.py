from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import threading
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scheduling.scheduler import Scheduler


class Command(BaseCommand):
    help = "Run a scheduler process: claims due runs and heartbeats, dispatches them, detects misses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--worker-id", default=None, help="name in health and run leases")
        parser.add_argument("--max-concurrency", type=int, default=None)
        parser.add_argument(
            "--stats-file", default=None, help="write loop statistics (JSON) here on SIGUSR1 and at exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        scheduler = Scheduler(worker_id=options["worker_id"], max_concurrency=options["max_concurrency"])
        stats_file = Path(options["stats_file"]) if options["stats_file"] else None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        if stats_file:
            signal.signal(signal.SIGUSR1, lambda *_: self._dump(scheduler, stats_file))
        self.stdout.write(f"scheduler {scheduler.worker_id} running; Ctrl-C to stop")
        self.stdout.flush()
        asyncio.run(scheduler.run(stop))
        if stats_file:
            self._dump(scheduler, stats_file)
        self.stdout.write(f"scheduler {scheduler.worker_id} stopped.")

    @staticmethod
    def _dump(scheduler: Scheduler, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(scheduler.stats)))
