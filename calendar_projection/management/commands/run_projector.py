from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from calendar_projection.loop import Projector


class Command(BaseCommand):
    help = "Run a projector process: applies lifecycle events to the calendar read model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--worker-id", default=None, help="name in health")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        projector = Projector(worker_id=options["worker_id"])
        self.stdout.write(f"projector {projector.worker_id} running; Ctrl-C to stop")
        self.stdout.flush()
        projector.run(stop)
