from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scheduling.scheduler import run_forever


class Command(BaseCommand):
    help = "Run a scheduler process: claims due runs and heartbeats, dispatches them, detects misses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--worker-id", default=None, help="name in health and run leases")
        parser.add_argument("--max-concurrency", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("scheduler running; Ctrl-C to stop")
        self.stdout.flush()
        run_forever(stop, worker_id=options["worker_id"], max_concurrency=options["max_concurrency"])
