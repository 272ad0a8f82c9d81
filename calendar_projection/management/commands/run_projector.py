from __future__ import annotations

import os
import signal
import threading
from typing import Any

from django.conf import settings
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
        if settings.UA_PROJECTOR_NICE > 0:
            # The read model may lag a burst of writes; the API and the scheduler on the same cores may not.
            os.nice(settings.UA_PROJECTOR_NICE)
        projector = Projector(worker_id=options["worker_id"])
        self.stdout.write(f"projector {projector.worker_id} running; Ctrl-C to stop")
        self.stdout.flush()
        projector.run(stop)
